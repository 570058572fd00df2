"""API tokens compared in constant time, and which hosts count as loopback."""

from __future__ import annotations

from ragsys.serve.security import token_matches
from ragsys.serve.settings import is_loopback
from tests.fixtures.serve import TOKEN


def test_token_compare_and_loopback_rules() -> None:
    assert (
        token_matches(TOKEN, TOKEN) and not token_matches(TOKEN, TOKEN + "x") and not token_matches("", TOKEN)
    )
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(
        is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "::", "example.com", "localhost.evil.com")
    )
