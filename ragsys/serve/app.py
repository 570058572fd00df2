"""The HTTP API and the page, wired from objects the caller already built.

`create_app` takes a ready `Pipeline` (with its generator), an open `Index` and a
`FeedbackStore`, so tests pass tiny models or fakes and the CLI passes real ones; it
loads nothing itself (but `POST /admin/pipeline` does, when an administrator swaps pipelines).
OpenAPI is published at /openapi.json (and /docs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ragsys import __version__
from ragsys.feedback.records import StoreWriteError, UnknownAnswerError
from ragsys.feedback.store import FeedbackStore
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline
from ragsys.serve.admin import admin_routes
from ragsys.serve.answering import Asker
from ragsys.serve.documents import PageSource
from ragsys.serve.live import LiveIndex
from ragsys.serve.metrics import Metrics, MetricsMiddleware
from ragsys.serve.responses import (
    AskResponse,
    Health,
    MetricsOut,
    errors,
    install_openapi,
    page_response,
    stream_response,
)
from ragsys.serve.schemas import (
    AskRequest,
    FeedbackAck,
    FeedbackRequest,
    check_length,
    is_blank,
    validation_error,
)
from ragsys.serve.security import BodyLimit, token_dependency
from ragsys.serve.settings import ServeSettings
from ragsys.serve.worker import GenerationWorker, QueueFullError

# The page loads only its own script, style and blob: page images; nothing inline runs.
PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'"
STATIC = {"page.js": "text/javascript", "page.css": "text/css"}
log = logging.getLogger("ragsys.serve")
PAGE = r"^([1-9][0-9]{0,5})(\.png)?$"  # a page number, or one with .png: the schema publishes it
# The router's `{doc:path}` is `.*`, which stops at a newline: such an id reaches no route (a
# plain 404, before the token check), and no indexed document can be named that way.
ONE_LINE: dict[str, Any] = {"not": {"pattern": "\n"}}


def create_app(
    pipeline: Pipeline, index: Index, store: FeedbackStore, settings: ServeSettings | None = None
) -> FastAPI:
    """Example:
    >>> app = create_app(config.build(index, generator=True), index, store)  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = settings or ServeSettings()
    worker, metrics = GenerationWorker(settings.queue_size), Metrics()
    live = LiveIndex(pipeline, index)  # each request pins a generation; a re-index is picked up

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        worker.stop()
        live.close()

    app = FastAPI(title="ragsys", version=__version__, lifespan=lifespan,
                  description="Ask questions of an index, open cited pages, and leave feedback.")  # fmt: skip
    app.state.worker, app.state.metrics, app.state.settings = worker, metrics, settings
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(QueueFullError, _queue_full)
    app.add_exception_handler(StoreWriteError, _not_stored)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: it also times 413s
    auth = [Depends(token_dependency(settings.token))]
    _ask_routes(app, Asker(live, store, worker), settings, auth)
    _feedback_route(app, store, settings, auth)
    _document_route(app, PageSource(live, settings.png_dpi), auth)
    _ops_routes(app, live, worker, metrics, auth)
    admin_routes(app, live, settings.token, auth)
    _page_routes(app)
    install_openapi(app, settings)
    return app


def _ask_routes(app: FastAPI, asker: Asker, settings: ServeSettings, auth: list[Any]) -> None:
    def question_of(req: AskRequest) -> str:
        check_length("question", req.question, settings.max_question_chars)
        if is_blank(req.question):
            raise HTTPException(422, "question is empty")
        if req.k is not None and req.k > settings.max_k:
            raise HTTPException(422, f"k is {req.k}; this server retrieves at most {settings.max_k}")
        return req.question.strip()

    @app.post("/ask", dependencies=auth, response_model=AskResponse,
              responses=errors(400, 401, 413, 422, 500, 503),
              summary="Answer a question (the `ragsys ask --json` shape + answer_id)")  # fmt: skip
    async def ask(req: AskRequest) -> dict[str, object]:
        question = question_of(req)
        try:
            return await asker.ask(question, req.k, req.filter)
        except (QueueFullError, StoreWriteError):
            raise
        except Exception as e:
            raise HTTPException(500, f"generation failed: {e}") from e

    @app.post("/ask/stream", dependencies=auth, response_class=StreamingResponse,
              responses=stream_response() | errors(400, 401, 413, 422, 503),
              summary="Answer as NDJSON: text events, then a done event with the /ask JSON")  # fmt: skip
    async def ask_stream(req: AskRequest) -> StreamingResponse:
        body = asker.stream(question_of(req), req.k, req.filter)
        return StreamingResponse(
            body, media_type="application/x-ndjson", headers={"Cache-Control": "no-store"}
        )


def _feedback_route(app: FastAPI, store: FeedbackStore, settings: ServeSettings, auth: list[Any]) -> None:
    @app.post("/feedback", dependencies=auth, response_model=FeedbackAck,
              responses=errors(400, 401, 404, 413, 422, 503),
              summary="Rate an answer (and optionally revise it); durable before the 200")  # fmt: skip
    def feedback(req: FeedbackRequest) -> FeedbackAck:
        check_length("revision", req.revision, settings.max_text_chars)
        check_length("comment", req.comment, settings.max_text_chars)
        try:
            record = store.add_feedback_for(req.answer_id, req.rating, req.revision, req.comment)
        except UnknownAnswerError as e:
            raise HTTPException(
                404, f"unknown answer_id {req.answer_id!r}: send an id that /ask returned"
            ) from e
        return FeedbackAck(id=record.id, answer_id=req.answer_id, rating=record.rating)


def _document_route(app: FastAPI, pages: PageSource, auth: list[Any]) -> None:
    @app.get("/documents/{doc:path}/pages/{page}", dependencies=auth,
             responses=page_response() | errors(401, 404, 410, 422),
             summary="A page of an indexed document: JSON text, or PNG (`3.png` or ?format=png)")  # fmt: skip
    def document_page(
        doc: Annotated[str, Path(json_schema_extra=ONE_LINE)],
        page: Annotated[str, Path(json_schema_extra={"pattern": PAGE})],
        format: Annotated[Literal["json", "png"], Query()] = "json",
    ) -> Response:
        number, png = _page_number(page)
        if png or format == "png":
            return Response(pages.png(doc, number), media_type="image/png")
        return JSONResponse(pages.text(doc, number))


def _page_number(raw: str) -> tuple[int, bool]:
    match = re.fullmatch(PAGE.strip("^$"), raw)
    if match is None:
        raise HTTPException(422, f"page {raw[:20]!r} is not a page number; use e.g. 3 or 3.png")
    return int(match.group(1)), match.group(2) is not None


def _ops_routes(
    app: FastAPI, live: LiveIndex, worker: GenerationWorker, metrics: Metrics, auth: list[Any]
) -> None:
    def queue_state() -> dict[str, object]:
        return {"depth": worker.depth(), "capacity": worker.capacity, "busy": worker.busy()}

    @app.get("/health", response_model=Health,
             summary="Liveness; never waits behind generation (no token needed)")  # fmt: skip
    def health() -> dict[str, object]:
        snap = live.current()  # the generation and pipeline new requests are answered from
        return {"status": "ok", "pipeline": snap.pipeline.config.name, "pipeline_version": snap.version,
                "generation": snap.generation, "documents": len(snap.index.manifest.documents),
                "queue": queue_state()}  # fmt: skip

    @app.get("/metrics", dependencies=auth, response_model=MetricsOut, responses=errors(401),
             summary="Request counts and p50/p95 latency per route")  # fmt: skip
    def get_metrics() -> dict[str, object]:
        return metrics.snapshot() | {"queue": queue_state()}


def _page_routes(app: FastAPI) -> None:
    assets = files("ragsys.serve") / "static"
    html = (assets / "page.html").read_text(encoding="utf-8")
    static = {name: (assets / name).read_text(encoding="utf-8") for name in STATIC}

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(
            html, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        )

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in static:  # a fixed set held in memory: the request never names a file
            raise HTTPException(404, "no such asset")
        return Response(static[name], media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff"})


async def _queue_full(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"server busy: {exc}; retry shortly"}, 503, headers={"Retry-After": "2"})


async def _not_stored(request: Request, exc: Exception) -> JSONResponse:
    """A write the store rolled back (disk full, I/O error): never a 200 for what is not on disk.
    The client sees SQLite's reason but not the db's path; the server log keeps the full error."""
    assert isinstance(exc, StoreWriteError)
    log.error("%s %s: %s", request.method, request.url.path, exc)
    detail = f"not stored: the feedback store could not write ({exc.reason}); nothing was saved, retry later"
    return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "30"})
