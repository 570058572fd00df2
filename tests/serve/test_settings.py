"""Serve settings: a public bind needs a long enough token."""

from __future__ import annotations

import pytest

from ragsys.serve import ServeSettings
from tests.fixtures.serve import TOKEN


def test_settings_refuse_a_public_bind_without_a_token() -> None:
    with pytest.raises(ValueError, match="RAGSYS_TOKEN"):
        ServeSettings(host="0.0.0.0")
    with pytest.raises(ValueError, match="shorter than 16"):
        ServeSettings(host="0.0.0.0", token="short")
    assert ServeSettings(host="0.0.0.0", token=TOKEN).token == TOKEN
    assert ServeSettings().host == "127.0.0.1"
