"""Request bodies, and turning pydantic's validation errors into one clear 4xx message.

Length limits live in `ServeSettings` (they are per server), so handlers check them with
`check_length`; the models only say what is structurally required, and the published OpenAPI
adds each server's limits (`responses.install_openapi`).
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field

from ragsys.types import Frozen

# A character that no regex engine calls whitespace: Python's str.isspace set (it adds \x1c-\x1f and
# \x85), ECMA's (\ufeff) and Rust's together. The schema publishes the same class the handler
# checks, so "has something to ask" means one thing to every client and to this server.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{_SPACE}]"


def is_blank(text: str) -> bool:
    return re.search(NOT_BLANK, text) is None


class AskRequest(Frozen):
    question: str = Field(
        min_length=1, description="the question, in plain text (not only whitespace)",
        json_schema_extra={"pattern": NOT_BLANK},
    )  # fmt: skip
    k: int | None = Field(
        default=None, ge=1, description="passages to retrieve; the pipeline's top_k if omitted"
    )
    filter: dict[str, list[str]] | None = Field(
        default=None,
        description='metadata filters, e.g. {"company": ["Apple*"], "period": ["2023 Q3"]}: AND across '
        "fields, OR within one (ragsys search --filter)",
    )


class FeedbackRequest(Frozen):
    answer_id: str = Field(min_length=1, max_length=64, description="the `answer_id` that /ask returned")
    rating: Literal["up", "down"]
    revision: str | None = Field(default=None, description="the answer as it should have been")
    comment: str | None = None


class FeedbackAck(Frozen):
    id: str
    answer_id: str
    rating: Literal["up", "down"]


def check_length(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise HTTPException(422, f"{name} is {len(value)} characters; this server accepts at most {limit}")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """400 for a body that is not JSON at all, 422 naming each bad or missing field otherwise."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        reason = (bad_json.get("ctx") or {}).get("error", "")
        return JSONResponse({"detail": f"request body is not valid JSON: {reason}".rstrip(": ")}, 400)
    parts = [f"{_where(e['loc'])}: {'missing' if e['type'] == 'missing' else e['msg']}" for e in errors]
    simple = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": "; ".join(parts), "errors": simple}, 422)


def _where(loc: tuple[object, ...] | list[object]) -> str:
    inner = [str(p) for p in loc[1:]] if loc and loc[0] == "body" else [str(p) for p in loc]
    return ".".join(inner) or "body"
