"""What the server enforces, as one frozen value: binding, the API token and input limits.

A server reachable from other machines without a token would let anyone read the
indexed documents and write to the feedback store, so such settings cannot be built.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from ragsys.types import Frozen

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
MIN_TOKEN_CHARS = 16  # shorter tokens can be guessed online; `secrets.token_urlsafe(32)` gives 43


class ServeSettings(Frozen):
    """Limits are on characters and bytes the server will read, so one request cannot
    make it allocate or tokenize without bound (the generator's window is far smaller)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: str | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_question_chars: int = Field(default=2000, ge=1)
    max_text_chars: int = Field(default=20000, ge=1, description="revision and comment length limit")
    max_k: int = Field(default=50, ge=1)
    queue_size: int = Field(default=8, ge=1, description="generations waiting; more get 503")
    png_dpi: int = Field(default=110, ge=36, le=300)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ServeSettings:
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"the API token is shorter than {MIN_TOKEN_CHARS} characters; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"--host {self.host} is reachable from other machines: set an API token with --token "
                "or the RAGSYS_TOKEN environment variable, or bind to 127.0.0.1"
            )
        return self


def is_loopback(host: str) -> bool:
    """True only for names and addresses that cannot be reached from another machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a public address
