"""A fresh feedback store per test, in a folder that does not exist yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.feedback.store import FeedbackStore


@pytest.fixture()
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore.open(tmp_path / "sub" / "fb.sqlite")
