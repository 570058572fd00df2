"""`ragsys serve` while `ragsys index` adds and deletes files: each answer comes from one whole
generation, /health moves to the new one without a restart, and a generation a request still
uses is removed only after that request ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi.testclient import TestClient

from ragsys.feedback.store import FeedbackStore
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.types import Answer, Hit
from tests.fixtures.corpus import write_corpus
from tests.fixtures.serve import FakeGenerator, make_client, wait_for

QUESTION = "which round is the zebra lighthouse in"
ASK = {"question": QUESTION}


class EveryHit:
    """Answers with every retrieved passage as context, so a response shows all it searched."""

    def generate(self, query: str, context: Sequence[Hit]) -> Answer:
        return self.stream(query, context, None)

    def stream(self, query: str, context: Sequence[Hit], on_text: Callable[[str], None] | None) -> Answer:
        return Answer(question=query, text="ok", abstained=False, citations=(), contexts=tuple(context))


def _round(corpus: Path, n: int) -> None:
    """Round n adds round{n}.txt and deletes round{n-1}.txt: each generation has its own file."""
    (corpus / f"round{n - 1}.txt").unlink(missing_ok=True)
    text = f"Round {n}: the zebra lighthouse keeper counted {n} ships in round {n}.\n"
    (corpus / f"round{n}.txt").write_text(text, encoding="utf-8")


def _chunk_ids(idx: Path) -> tuple[str, frozenset[str]]:
    index = Index.open(idx)
    try:
        return index.manifest.generation, frozenset(c.id for c in index.store.iter_chunks())
    finally:
        index.close()


def serving(client: TestClient) -> str:
    return str(client.get("/health").json()["generation"])


def _generations(idx: Path) -> list[str]:
    return sorted(d.name for d in (idx / "generations").iterdir())


def _setup(tmp_path: Path, config: PipelineConfig) -> tuple[Path, Path, Index]:
    corpus, idx = write_corpus(tmp_path / "docs"), tmp_path / "idx"
    _round(corpus, 1)
    index_paths([corpus], idx, config.index_spec(), workers=1)
    return corpus, idx, Index.open(idx)


def test_every_answer_comes_from_one_generation_while_the_index_changes(
    tmp_path: Path, tiny_pipeline: PipelineConfig, store: FeedbackStore
) -> None:
    corpus, idx, index = _setup(tmp_path, tiny_pipeline)
    gen_chunks = dict([_chunk_ids(idx)])
    responses: list[list[str]] = []
    pages: list[int] = []
    stop = threading.Event()
    with make_client(tiny_pipeline.build(index), index, store, generator=EveryHit()) as client:

        def ask_until_stopped() -> None:
            while not stop.is_set():
                r = client.post("/ask", json={"question": QUESTION, "k": 50})
                assert r.status_code == 200, r.text
                contexts = r.json()["contexts"]
                responses.append([c["chunk_id"] for c in contexts])
                page = client.get(f"/documents/{contexts[0]['doc']}/pages/1")
                pages.append(page.status_code)  # 404 once its document is deleted; never 500

        askers = [threading.Thread(target=ask_until_stopped) for _ in range(2)]
        for t in askers:
            t.start()
        try:
            for n in (2, 3, 4):
                _round(corpus, n)
                index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
                gen, chunks = _chunk_ids(idx)
                gen_chunks[gen] = chunks
                wait_for(lambda g=gen: serving(client) == g, 30)
        finally:
            stop.set()
            for t in askers:
                t.join(30)
    assert gen_chunks.keys() == {"g000001", "g000002", "g000003", "g000004"}
    served = set()
    for ids in responses:
        whole = [g for g, chunks in gen_chunks.items() if set(ids) <= chunks]
        assert whole, f"a response mixed generations: {ids}"
        served.update(whole)
    assert len(served) >= 2, "the requests never saw a re-index"
    assert set(pages) <= {200, 404}


def test_a_generation_in_use_is_removed_only_after_its_request_ends(
    tmp_path: Path, tiny_pipeline: PipelineConfig, store: FeedbackStore
) -> None:
    corpus, idx, index = _setup(tmp_path, tiny_pipeline)
    _, first_chunks = _chunk_ids(idx)
    gate = threading.Event()
    gen = FakeGenerator(gate=gate)
    with make_client(tiny_pipeline.build(index), index, store, generator=gen) as client:
        assert serving(client) == "g000001"
        result: dict[str, object] = {}
        slow = threading.Thread(target=lambda: result.update(client.post("/ask", json=ASK).json()))
        slow.start()
        assert gen.entered.wait(10)  # the request has its hits from g000001 and is generating
        for n in (2, 3):
            _round(corpus, n)
            index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
            wait_for(lambda g=f"g00000{n}": serving(client) == g, 30)
        # The run that made g000003 found g000002 still served; it is released now, g000001 is not.
        index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)  # unchanged: only cleans up
        assert _generations(idx) == ["g000001", "g000003"]
        gate.set()
        slow.join(10)
        contexts = result["contexts"]
        assert isinstance(contexts, list) and {c["chunk_id"] for c in contexts} <= first_chunks
        index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)  # unchanged: only cleans up
        assert _generations(idx) == ["g000003"]
        assert serving(client) == "g000003"
