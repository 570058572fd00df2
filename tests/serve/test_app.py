"""`ragsys serve`: the HTTP API on a tiny real index, with a fake generator where exact
answers matter and the tiny random LM where the real streaming path must run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragsys.feedback.store import FeedbackStore
from ragsys.generate.config import GeneratorConfig
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline
from ragsys.serve.worker import GenerationWorker
from tests.fixtures.serve import TOKEN, FakeGenerator, ask, make_client, pdf_doc, wait_for

# -- answering -----------------------------------------------------------------------------


def test_ask_returns_the_cli_json_and_stores_the_answer(client: TestClient, store: FeedbackStore) -> None:
    out = ask(client, k=3)
    assert set(out) >= {"answer", "abstained", "citations", "contexts", "timings", "answer_id"}
    assert out["answer"] == "It runs at two metres per second [1]."
    assert "retrieve_s" in out["timings"]  # type: ignore[operator]
    stored = store.get_answer(str(out["answer_id"]))
    assert stored is not None and stored.answer == out["answer"]
    assert stored.contexts == tuple(c["chunk_id"] for c in out["contexts"])  # type: ignore[attr-defined]


def test_ask_takes_metadata_filters(client: TestClient, tiny_index: Index) -> None:
    others = [Path(d).name for d in tiny_index.manifest.documents if not d.endswith("manual.pdf")]
    out = ask(client, k=3, filter={"file": [others[0]]})
    assert out["contexts"] and all(c["doc"].endswith(others[0]) for c in out["contexts"])  # type: ignore[union-attr]
    r = client.post("/ask", json={"question": "q", "filter": {"file": "not a list"}})
    assert r.status_code == 422


def test_stream_pieces_join_to_the_final_answer(client: TestClient, store: FeedbackStore) -> None:
    r = client.post("/ask/stream", json={"question": "conveyor belt speed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in r.text.splitlines()]
    assert [e["event"] for e in events] == ["text", "text", "text", "done"]
    result = events[-1]["result"]
    assert "".join(e["text"] for e in events[:-1]) == result["answer"]
    assert store.get_answer(result["answer_id"]) is not None


def test_ask_with_the_tiny_lm_streams_through_hfgenerator(
    search: Pipeline, tiny_index: Index, store: FeedbackStore, tiny_lm_path: Path
) -> None:
    config = GeneratorConfig(
        model=str(tiny_lm_path), max_new_tokens=6, context_tokens=64, system_prompt="Be brief."
    )
    gen = config.build()
    with make_client(search, tiny_index, store, generator=gen) as c:
        events = [
            json.loads(x) for x in c.post("/ask/stream", json={"question": "grease drives"}).text.splitlines()
        ]
    assert events[-1]["event"] == "done", events
    result = events[-1]["result"]
    assert "".join(e["text"] for e in events if e["event"] == "text") == result["answer"]
    assert result["contexts"] and result["timings"]["new_tokens"] <= 6


# -- feedback ------------------------------------------------------------------------------


def test_feedback_is_stored_with_question_answer_contexts_and_version(
    client: TestClient, store: FeedbackStore, search: Pipeline, tmp_path: Path
) -> None:
    out = ask(client, "how fast does the belt run")
    body = {"answer_id": out["answer_id"], "rating": "down", "revision": "Two metres per second [1].",
            "comment": "too vague"}  # fmt: skip
    r = client.post("/feedback", json=body)
    assert r.status_code == 200, r.text
    ack = r.json()
    with FeedbackStore.open(
        tmp_path / "feedback.db", readonly=True
    ) as other:  # durable: another connection sees it
        record = other.get(ack["id"])
    assert record is not None and record.rating == "down" and record.revision == "Two metres per second [1]."
    assert record.question == "how fast does the belt run" and record.answer == out["answer"]
    assert record.contexts == tuple(c["chunk_id"] for c in out["contexts"])  # type: ignore[attr-defined]
    assert record.pipeline_version == search.config.version() and record.comment == "too vague"


# -- 4xx paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/ask", b'{"question": "unterminated', 400, "not valid JSON"),
        ("/ask", b"{}", 422, "question: missing"),
        ("/ask", b'{"question": "hi", "mode": "x"}', 422, "mode"),
        ("/ask", b'{"question": "   "}', 422, "question is empty"),
        ("/ask", b'{"question": "hi", "k": 0}', 422, "k"),
        ("/ask", b'{"question": "hi", "k": 51}', 422, "at most 50"),
        ("/ask", json.dumps({"question": "q" * 2001}).encode(), 422, "at most 2000"),
        ("/ask/stream", b"[1, 2]", 422, "body"),
        ("/feedback", b'{"rating": "up"}', 422, "answer_id: missing"),
        ("/feedback", b'{"answer_id": "abc", "rating": "meh"}', 422, "rating"),
        ("/feedback", b'{"answer_id": "0123456789abcdef", "rating": "up"}', 404, "unknown answer_id"),
        ("/feedback", json.dumps({"answer_id": "a", "rating": "up", "revision": "r" * 20001}).encode(), 422,
         "revision is 20001"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_clear_4xx(
    client: TestClient, path: str, body: bytes, status: int, says: str
) -> None:
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


def test_oversize_bodies_are_refused_declared_or_streamed(client: TestClient) -> None:
    big = json.dumps({"question": "x" * 70_000}).encode()
    r = client.post("/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than 65536 bytes" in r.json()["detail"]
    chunks = (big[i : i + 8192] for i in range(0, len(big), 8192))  # no Content-Length: chunked upload
    r = client.post("/feedback", content=chunks, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


# -- security ------------------------------------------------------------------------------


def test_token_is_required_on_the_api_when_configured(
    search: Pipeline, tiny_index: Index, store: FeedbackStore
) -> None:
    with make_client(search, tiny_index, store, token=TOKEN) as c:
        doc = pdf_doc(tiny_index)
        for method, url in [("POST", "/ask"), ("POST", "/ask/stream"), ("POST", "/feedback"),
                            ("GET", f"/documents/{doc}/pages/1"), ("GET", "/metrics")]:  # fmt: skip
            assert c.request(method, url, json={}).status_code == 401
            wrong = c.request(method, url, json={}, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
            assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong API token"
        basic = c.get("/metrics", headers={"Authorization": "Basic " + TOKEN})
        assert basic.status_code == 401 and "Bearer" in basic.json()["detail"]
        good = {"Authorization": f"Bearer {TOKEN}"}
        out = c.post("/ask", json={"question": "belt speed"}, headers=good)
        assert out.status_code == 200
        fb = c.post("/feedback", json={"answer_id": out.json()["answer_id"], "rating": "up"}, headers=good)
        assert fb.status_code == 200 and c.get("/metrics", headers=good).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200  # no data there


# -- concurrency and operations ------------------------------------------------------------


def test_full_queue_is_503_and_other_routes_never_wait(
    search: Pipeline, tiny_index: Index, store: FeedbackStore
) -> None:
    gate = threading.Event()
    gen = FakeGenerator(gate=gate)
    with make_client(search, tiny_index, store, queue_size=1) as warm:
        first = ask(warm)  # rated below while the model is busy
    with make_client(search, tiny_index, store, generator=gen, queue_size=1) as c:
        worker: GenerationWorker = c.app.state.worker  # type: ignore[attr-defined]
        results: list[int] = []

        def post() -> None:
            results.append(c.post("/ask", json={"question": "q"}).status_code)

        busy = [threading.Thread(target=post) for _ in range(2)]
        busy[0].start()
        assert gen.entered.wait(5)
        busy[1].start()
        wait_for(lambda: worker.depth() == 1)
        r = c.post("/ask", json={"question": "one too many"})
        assert r.status_code == 503 and r.headers["retry-after"] and "busy" in r.json()["detail"]
        assert c.post("/ask/stream", json={"question": "and another"}).status_code == 503
        started = time.perf_counter()
        assert c.get("/health").json()["queue"] == {"depth": 1, "capacity": 1, "busy": True}
        assert c.get(f"/documents/{pdf_doc(tiny_index)}/pages/1").status_code == 200
        assert c.post("/feedback", json={"answer_id": first["answer_id"], "rating": "up"}).status_code == 200
        assert c.get("/metrics").status_code == 200
        assert time.perf_counter() - started < 5  # none of them waited for the gate
        gate.set()
        for t in busy:
            t.join(10)
    assert results == [200, 200]


def test_openapi_page_and_assets(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"] and paths["/ask"]["post"]["security"]
    assert {
        "/ask",
        "/ask/stream",
        "/feedback",
        "/health",
        "/metrics",
        "/documents/{doc}/pages/{page}",
    } <= set(paths)
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<label for="question">' in page.text and "/static/page.js" in page.text
    assert client.get("/static/page.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/..%2Fapp.py").status_code == 404
