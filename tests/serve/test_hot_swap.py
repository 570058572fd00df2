"""`POST /admin/pipeline`: another saved pipeline is swapped in while requests keep coming; every
response comes from one whole pipeline, old or new, and says which; a request already answering
finishes on the old one; /health and the stored answers name the version that answered."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragsys.chunk.chunker import ChunkConfig
from ragsys.feedback.store import FeedbackStore
from ragsys.generate.config import GeneratorConfig
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig
from tests.fixtures.serve import TOKEN, FakeGenerator, make_client

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAKE_TEXT = "It runs at two metres per second [1]."  # what the old pipeline's FakeGenerator says
ASK = {"question": "how fast does the conveyor belt run"}


@pytest.fixture(scope="module")
def tuned_dir(
    tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The served pipeline with a real (tiny, random) generator: another version, same index."""
    generator = GeneratorConfig(
        model=str(tiny_lm_path), max_new_tokens=4, context_tokens=64, system_prompt="Be brief."
    )
    tuned = tiny_pipeline.model_copy(update={"name": "tiny-tuned", "generator": generator})
    out = tmp_path_factory.mktemp("tuned")
    tuned.save(out)
    return out


def _swap(client: TestClient, path: Path | str, headers: dict[str, str] = AUTH) -> dict[str, object]:
    r = client.post("/admin/pipeline", json={"path": str(path)}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_every_response_comes_from_one_pipeline_while_it_is_swapped(
    search: Pipeline, tiny_index: Index, store: FeedbackStore, tuned_dir: Path
) -> None:
    old_version, new_version = search.config.version(), PipelineConfig.load(tuned_dir).version()
    assert old_version != new_version
    gate = threading.Event()
    fake = FakeGenerator(gate=gate)
    results: list[tuple[int, dict[str, object]]] = []
    stop = threading.Event()
    with make_client(search, tiny_index, store, generator=fake, token=TOKEN) as client:

        def ask_until_stopped() -> None:
            while not stop.is_set():
                r = client.post("/ask", json=ASK, headers=AUTH)
                results.append((r.status_code, r.json()))

        first: list[tuple[int, dict[str, object]]] = []
        held = threading.Thread(target=lambda: first.append(_held(client)))
        held.start()
        assert fake.entered.wait(10)  # one request is generating on the old pipeline, held there
        askers = [threading.Thread(target=ask_until_stopped) for _ in range(2)]
        for t in askers:
            t.start()
        swapped = _swap(client, tuned_dir)
        gate.set()  # the held request and those queued behind it finish
        held.join(30)
        after = [client.post("/ask", json=ASK, headers=AUTH) for _ in range(3)]
        stop.set()
        for t in askers:
            t.join(30)
        health = client.get("/health").json()
    assert swapped["pipeline_version"] == new_version and swapped["previous_version"] == old_version
    assert health["pipeline_version"] == new_version and health["pipeline"] == "tiny-tuned"
    assert all(r.status_code == 200 for r in after)
    assert {r.json()["pipeline_version"] for r in after} == {new_version}
    assert first[0][0] == 200 and first[0][1]["pipeline_version"] == old_version  # pinned before the swap
    assert all(status == 200 for status, _ in results), [b for s, b in results if s != 200][:3]
    for _, body in [*first, *results, *((200, r.json()) for r in after)]:
        version = body["pipeline_version"]
        assert version in (old_version, new_version)
        assert (body["answer"] == FAKE_TEXT) == (version == old_version)  # the text shows who answered
        stored = store.get_answer(str(body["answer_id"]))
        assert stored is not None and stored.pipeline_version == version


def _held(client: TestClient) -> tuple[int, dict[str, object]]:
    r = client.post("/ask", json=ASK, headers=AUTH)
    return r.status_code, r.json()


def test_feedback_is_recorded_against_the_version_that_answered(
    search: Pipeline, tiny_index: Index, store: FeedbackStore, tuned_dir: Path
) -> None:
    with make_client(search, tiny_index, store, token=TOKEN) as client:
        first = client.post("/ask", json=ASK, headers=AUTH).json()
        _swap(client, tuned_dir)
        second = client.post("/ask", json=ASK, headers=AUTH).json()
        for answer in (first, second):  # feedback on the old answer arrives after the swap
            r = client.post(
                "/feedback", json={"answer_id": answer["answer_id"], "rating": "down"}, headers=AUTH
            )
            assert r.status_code == 200, r.text
    by_answer = {r.answer_id: r.pipeline_version for r in store.records()}
    assert by_answer == {
        first["answer_id"]: search.config.version(),
        second["answer_id"]: second["pipeline_version"],
    }
    assert first["pipeline_version"] != second["pipeline_version"]


def test_the_admin_route_needs_a_configured_token(
    search: Pipeline, tiny_index: Index, store: FeedbackStore, tuned_dir: Path
) -> None:
    with make_client(search, tiny_index, store) as client:  # loopback, no token
        r = client.post("/admin/pipeline", json={"path": str(tuned_dir)})
        health = client.get("/health").json()
    assert r.status_code == 403 and "--token" in r.json()["detail"]
    assert health["pipeline_version"] == search.config.version()
    with make_client(search, tiny_index, store, token=TOKEN) as client:
        wrong = client.post(
            "/admin/pipeline", json={"path": str(tuned_dir)}, headers={"Authorization": "Bearer x"}
        )
    assert wrong.status_code == 401


def test_a_pipeline_that_does_not_fit_is_refused_and_the_old_one_keeps_serving(
    search: Pipeline, tiny_index: Index, store: FeedbackStore, tuned_dir: Path, tmp_path: Path
) -> None:
    tuned = PipelineConfig.load(tuned_dir)
    rechunked = tuned.model_copy(
        update={"chunking": ChunkConfig(max_tokens=32, overlap_tokens=4, tokenizer=tuned.chunking.tokenizer)}
    )
    rechunked.save(tmp_path / "rechunked")
    tuned.model_copy(update={"generator": None}).save(tmp_path / "no-generator")
    (tmp_path / "empty").mkdir()
    with make_client(search, tiny_index, store, token=TOKEN) as client:
        statuses = {
            name: client.post("/admin/pipeline", json={"path": str(tmp_path / name)}, headers=AUTH)
            for name in ("rechunked", "no-generator", "empty", "missing")
        }
        answer = client.post("/ask", json=ASK, headers=AUTH).json()
    assert {n: r.status_code for n, r in statuses.items()} == {
        "rechunked": 409,
        "no-generator": 422,
        "empty": 404,
        "missing": 404,
    }
    assert "chunks documents differently" in statuses["rechunked"].json()["detail"]
    assert answer["pipeline_version"] == search.config.version() and answer["answer"] == FAKE_TEXT
