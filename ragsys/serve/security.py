"""Request checks that run before any handler: the API token and the body size limit.

Both are plain ASGI/FastAPI pieces so they also guard the streaming endpoint, and
neither ever lets a request path or body reach the filesystem.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

bearer = HTTPBearer(auto_error=False, description="required when the server was started with a token")


def token_matches(given: str, expected: str) -> bool:
    """Constant-time, so response timing does not reveal how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def token_dependency(expected: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency: no-op without a token, else `Authorization: Bearer <token>` or 401."""

    async def check(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if expected is None:
            return
        if creds is None:  # no header, or not the Bearer scheme
            raise HTTPException(401, "missing API token: send `Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if not token_matches(creds.credentials, expected):
            raise HTTPException(401, "wrong API token", headers={"WWW-Authenticate": "Bearer"})

    return check


class BodyLimit:
    """Refuses (413) a request body over `max_bytes`, whether declared or streamed in chunks.

    The body is read here, bounded, and replayed to the app: a client cannot make the
    server buffer more than the limit by omitting or lying about Content-Length.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see the disconnect
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                return None
            more = message.get("more_body", False)
        return b"".join(parts)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body is larger than {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as streaming responses do

    return replay
