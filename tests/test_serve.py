"""`ragsys serve`: the HTTP API on a tiny real index, with a fake generator where exact
answers matter and the tiny random LM where the real streaming path must run."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ragsys.cli.serve import serve
from ragsys.feedback.store import FeedbackStore
from ragsys.generate.hf import GeneratorConfig
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.protocols import Generator
from ragsys.serve import ServeSettings, create_app
from ragsys.serve.answering import Asker
from ragsys.serve.metrics import Metrics
from ragsys.serve.security import token_matches
from ragsys.serve.settings import is_loopback
from ragsys.serve.worker import GenerationWorker, QueueFullError
from ragsys.types import Answer, Citation, Hit
from tests import pdfgen
from tests.corpus import write_corpus

TOKEN = "t0ken-for-tests-0123456789"


def build_tiny_index(root: Path, config: PipelineConfig) -> Path:
    """Three text files and a two-page PDF, indexed with `config` (shared with test_browser)."""
    corpus = write_corpus(root / "docs")
    pdfgen.simple(corpus / "manual.pdf", "The conveyor belt runs at two metres per second.", pages=2)
    index_paths([corpus], root / "index", config.index_spec(), workers=1)
    return root / "index"


class FakeGenerator:
    """Cites passage [1] and streams its answer in three pieces, so tests know the exact text."""

    def __init__(
        self, gate: threading.Event | None = None, pieces: int = 3, hold: threading.Event | None = None
    ) -> None:
        self.gate, self.pieces, self.hold, self.entered = gate, pieces, hold, threading.Event()
        self.streamed = 0

    def generate(self, query: str, context: Sequence[Hit]) -> Answer:
        return self.stream(query, context, on_text=None)

    def stream(self, query: str, context: Sequence[Hit], on_text: Callable[[str], None] | None) -> Answer:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        text = "It runs at two metres per second [1]."
        for i in range(self.pieces):
            if on_text is not None:
                on_text(text[i * len(text) // self.pieces : (i + 1) * len(text) // self.pieces])
                self.streamed += 1
                if self.hold is not None:  # the test decides when the next piece may come
                    assert self.hold.wait(10)
        c = context[0].chunk
        cite = Citation(
            n=1, chunk_id=c.id, doc=c.doc_id, page_start=c.page_start, page_end=c.page_end, text=c.text
        )
        hits = tuple(context[:3])
        return Answer(question=query, text=text, abstained=False, citations=(cite,), contexts=hits)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Iterator[Index]:
    index = Index.open(build_tiny_index(tmp_path_factory.mktemp("serve"), tiny_pipeline))
    yield index
    index.close()


@pytest.fixture(scope="module")
def search(tiny_index: Index, tiny_pipeline: PipelineConfig) -> Pipeline:
    return tiny_pipeline.build(tiny_index)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    with FeedbackStore.open(tmp_path / "feedback.db") as s:
        yield s


def make_client(
    search: Pipeline,
    index: Index,
    store: FeedbackStore,
    generator: Generator | None = None,
    **settings: Any,
) -> TestClient:
    rag = Pipeline(config=search.config, retrievers=search.retrievers, generator=generator or FakeGenerator())
    return TestClient(create_app(rag, index, store, ServeSettings(**settings)))


@pytest.fixture()
def client(search: Pipeline, tiny_index: Index, store: FeedbackStore) -> Iterator[TestClient]:
    with make_client(search, tiny_index, store) as c:
        yield c


def ask(
    client: TestClient, question: str = "how fast does the conveyor belt run", **kw: object
) -> dict[str, object]:
    r = client.post("/ask", json={"question": question, **kw})
    assert r.status_code == 200, r.text
    return dict(r.json())


def pdf_doc(index: Index) -> str:
    return next(d for d in index.manifest.documents if d.endswith("manual.pdf"))


# -- answering -----------------------------------------------------------------------------


def test_ask_returns_the_cli_json_and_stores_the_answer(client: TestClient, store: FeedbackStore) -> None:
    out = ask(client, k=3)
    assert set(out) >= {"answer", "abstained", "citations", "contexts", "timings", "answer_id"}
    assert out["answer"] == "It runs at two metres per second [1]."
    assert "retrieve_s" in out["timings"]  # type: ignore[operator]
    stored = store.get_answer(str(out["answer_id"]))
    assert stored is not None and stored.answer == out["answer"]
    assert stored.contexts == tuple(c["chunk_id"] for c in out["contexts"])  # type: ignore[attr-defined]


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


def test_a_stream_left_early_stops_generating(search: Pipeline, store: FeedbackStore) -> None:
    hold = threading.Event()
    gen = FakeGenerator(pieces=200, hold=hold)
    rag = Pipeline(config=search.config, retrievers=search.retrievers, generator=gen)
    worker = GenerationWorker(2)

    async def read_one() -> None:
        body = Asker(rag, store, worker, "v").stream("conveyor belt", None)
        assert b'"text"' in await body.__anext__()
        await body.aclose()  # what Starlette does when the client disconnects

    asyncio.run(read_one())
    hold.set()
    worker.stop()
    assert gen.streamed == 1  # the next piece raised ClientGone: generation ended early


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


def test_documents_serve_page_text_and_png(client: TestClient, tiny_index: Index) -> None:
    doc = pdf_doc(tiny_index)
    r = client.get(f"/documents/{doc}/pages/2")
    assert r.status_code == 200 and r.json()["pages"] == 2 and "Page 2." in r.json()["text"]
    for url in (f"/documents/{doc}/pages/2.png", f"/documents/{doc}/pages/1?format=png"):
        png = client.get(url)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/documents/{pdf}/pages/3", 404, "out of range"),
        ("/documents/{pdf}/pages/0", 422, "not a page number"),
        ("/documents/{pdf}/pages/two", 422, "not a page number"),
        ("/documents/{txt}/pages/1.png", 404, "not a PDF"),
        ("/documents/no-such-doc/pages/1", 404, "not in this index"),
        ("/documents/..%2F..%2Fetc%2Fpasswd/pages/1", 404, "not in this index"),
        ("/documents/%2Fetc%2Fpasswd/pages/1.png", 404, "not in this index"),
        ("/documents/{pdfdir}%2F..%2F..%2F..%2Fetc%2Fpasswd/pages/1", 404, "not in this index"),
        ("/documents/{pdf}%2F..%2Fnotes.txt/pages/1", 404, "not in this index"),
        ("/documents/{unindexed}/pages/1", 404, "not in this index"),
    ],
)
def test_documents_open_only_indexed_files(
    client: TestClient, tiny_index: Index, monkeypatch: pytest.MonkeyPatch, url: str, status: int, says: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    import pymupdf

    stray = pdfgen.simple(tmp_path / "stray.pdf")  # a real PDF on disk that was never indexed
    opened: list[object] = []
    monkeypatch.setattr(pymupdf, "open", lambda *a, **k: opened.append(a))  # nothing may be opened
    pdf = pdf_doc(tiny_index)
    txt = next(d for d in tiny_index.manifest.documents if d.endswith(".txt"))
    url = url.format(pdf=pdf, txt=txt, pdfdir=str(Path(pdf).parent), unindexed=stray)
    r = client.get(url)
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert opened == []


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


def test_token_compare_and_loopback_rules() -> None:
    assert (
        token_matches(TOKEN, TOKEN) and not token_matches(TOKEN, TOKEN + "x") and not token_matches("", TOKEN)
    )
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(
        is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "::", "example.com", "localhost.evil.com")
    )


def test_settings_refuse_a_public_bind_without_a_token() -> None:
    with pytest.raises(ValueError, match="RAGSYS_TOKEN"):
        ServeSettings(host="0.0.0.0")
    with pytest.raises(ValueError, match="shorter than 16"):
        ServeSettings(host="0.0.0.0", token="short")
    assert ServeSettings(host="0.0.0.0", token=TOKEN).token == TOKEN
    assert ServeSettings().host == "127.0.0.1"


def test_cli_refuses_to_start_public_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGSYS_TOKEN", raising=False)
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("noop")(lambda: None)  # two commands, so `serve` is addressed by name as in ragsys.cli
    runner = CliRunner()
    started = time.perf_counter()
    r = runner.invoke(app, ["serve", "--index", str(tmp_path), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "RAGSYS_TOKEN" in r.output and time.perf_counter() - started < 5
    monkeypatch.setenv("RAGSYS_TOKEN", TOKEN)  # accepted from the environment: now the index is checked
    r = runner.invoke(app, ["serve", "--index", str(tmp_path / "none"), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "no index here" in " ".join(r.output.split())


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
        _wait_for(lambda: worker.depth() == 1)
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


def test_metrics_count_requests_and_give_percentiles(client: TestClient) -> None:
    ask(client)
    client.post("/ask", content=b"{", headers={"Content-Type": "application/json"})
    client.get("/nowhere")
    routes = client.get("/metrics").json()["routes"]
    assert routes["POST /ask"]["count"] == 2 and routes["POST /ask"]["status"] == {"200": 1, "400": 1}
    assert (
        routes["POST /ask"]["errors"] == 1
        and routes["POST /ask"]["p95_ms"] >= routes["POST /ask"]["p50_ms"] > 0
    )
    assert routes["GET (unmatched)"]["count"] == 1


def test_metrics_percentiles_are_exact_on_known_samples() -> None:
    m = Metrics(window=100)
    for ms in range(1, 102):  # 1..101 ms; the window keeps the last 100 (2..101)
        m.record("GET /x", 200, ms / 1000)
    stats = m.snapshot()["routes"]["GET /x"]  # type: ignore[index]
    assert (
        stats["count"] == 101
        and stats["p50_ms"] == pytest.approx(51.5)
        and stats["p95_ms"] == pytest.approx(96.05)
    )


def test_worker_runs_jobs_in_order_and_bounds_its_queue() -> None:
    worker, gate, seen = GenerationWorker(capacity=1), threading.Event(), []

    def slow() -> None:
        assert gate.wait(5)
        seen.append(1)

    first = worker.submit(slow)
    _wait_for(worker.busy)
    second = worker.submit(lambda: seen.append(2))
    with pytest.raises(QueueFullError):
        worker.submit(lambda: seen.append(3))
    assert second.cancel()  # a job cancelled while queued never runs
    gate.set()
    first.result(5)
    err = worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        err.result(5)
    worker.stop()
    assert seen == [1]


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


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)
