"""What the API answers, declared: every body a route can send, as models its OpenAPI publishes.

Clients read the schema at /openapi.json, and tests/serve/test_api_fuzz.py checks every response
against it, so a route that sends a body or status it does not declare fails there. FastAPI
infers most of the schema; `install_openapi` adds what it cannot: this server's own input limits
(they are per server, in `ServeSettings`) and the lines of the NDJSON stream.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import Field, TypeAdapter

from ragsys.serve.settings import ServeSettings
from ragsys.types import Frozen

NDJSON = "application/x-ndjson"


class ErrorBody(Frozen):
    detail: str = Field(description="what was wrong, and what to send instead")


class FieldError(Frozen):
    loc: list[str]
    msg: str
    type: str


class ValidationErrorBody(Frozen):
    detail: str = Field(description="each bad or missing field, `field: reason`, joined by '; '")
    errors: list[FieldError] = Field(
        default=[], description="the same, one entry per field (when pydantic saw it)"
    )


class CitationOut(Frozen):
    n: int
    doc: str
    page_start: int
    page_end: int
    chunk_id: str
    text: str


class ContextOut(Frozen):
    n: int
    doc: str
    page_start: int
    page_end: int
    chunk_id: str
    score: float
    text: str


class AskResponse(Frozen):
    """The `ragsys ask --json` answer (ragsys.jsonshape.answer_json) plus the id feedback names."""

    answer: str
    abstained: bool
    citations: list[CitationOut]
    contexts: list[ContextOut]
    dropped_citations: int
    timings: dict[str, float]
    backend: str | None
    answer_id: str
    pipeline_version: str = Field(description="the version of the pipeline that answered (see /health)")


class StreamText(Frozen):
    event: Literal["text"]
    text: str


class StreamDone(Frozen):
    event: Literal["done"]
    result: AskResponse


class StreamError(Frozen):
    event: Literal["error"]
    detail: str


StreamEvent = Annotated[StreamText | StreamDone | StreamError, Field(discriminator="event")]


class QueueState(Frozen):
    depth: int
    capacity: int
    busy: bool


class Health(Frozen):
    status: Literal["ok"]
    pipeline: str
    pipeline_version: str = Field(description="the version of the pipeline new requests are answered by")
    generation: str | None = Field(
        default=None, description="the index generation new requests are answered from"
    )
    documents: int
    queue: QueueState


class RouteStats(Frozen):
    count: int
    errors: int
    status: dict[str, int]
    p50_ms: float
    p95_ms: float


class MetricsOut(Frozen):
    uptime_s: float
    routes: dict[str, RouteStats]
    queue: QueueState


class PageText(Frozen):
    doc: str
    name: str
    page: int
    pages: int
    text: str
    has_image: bool


_WHY = {
    400: "the body is not JSON",
    401: "missing or wrong API token (`Authorization: Bearer <token>`)",
    403: "admin routes are off: this server was started without a token (--token or RAGSYS_TOKEN)",
    404: "no such answer, document, page or pipeline directory",
    409: "the pipeline needs an index other than the one served: re-index, or serve it on its own",
    410: "the indexed file can no longer be rendered",
    413: "the body is larger than this server accepts",
    422: "a field is missing, malformed or over this server's limit; or the pipeline is not valid",
    500: "the generator failed on this question",
    503: "the generation queue is full, or the feedback store could not write (disk full, I/O error);"
    " nothing was stored: retry after `Retry-After` seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry for these error statuses, each with its body model."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ValidationErrorBody if code == 422 else ErrorBody, "description": _WHY[code]}
        if code == 503:
            out[code]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    return out


def stream_response() -> dict[int | str, dict[str, Any]]:
    """The 200 of /ask/stream; its schema is filled in by `install_openapi`."""
    return {200: {"description": "NDJSON: one event per line", "content": {NDJSON: {}}}}


def page_response() -> dict[int | str, dict[str, Any]]:
    """The 200 of a document page: its text as JSON, or its image."""
    png = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"model": PageText, "content": {"image/png": png}}}


def install_openapi(app: FastAPI, settings: ServeSettings) -> None:
    """Publishes FastAPI's schema with this server's limits and the stream's line schema added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # FastAPI caches it in app.openapi_schema: completed once, in place
            _publish_limits(schema["components"]["schemas"], settings)
            _publish_stream(schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _publish_limits(components: dict[str, Any], settings: ServeSettings) -> None:
    ask, feedback = components["AskRequest"]["properties"], components["FeedbackRequest"]["properties"]
    ask["question"]["maxLength"] = settings.max_question_chars
    _integer_branch(ask["k"])["maximum"] = settings.max_k
    for name in ("revision", "comment"):
        next(b for b in feedback[name]["anyOf"] if b.get("type") == "string")["maxLength"] = (
            settings.max_text_chars
        )


def _integer_branch(prop: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in prop["anyOf"] if b.get("type") == "integer")


def _publish_stream(schema: dict[str, Any]) -> None:
    """The stream, read as a JSON array of its lines (OpenAPI 3.2's reading of a sequential
    media type's `schema`): text events, then one done event or one error event."""
    lines = TypeAdapter(list[StreamEvent]).json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    for name, definition in lines.pop("$defs", {}).items():
        schema["components"]["schemas"].setdefault(name, definition)
    content = schema["paths"]["/ask/stream"]["post"]["responses"]["200"]["content"]
    content[NDJSON]["schema"] = lines
