"""Feedback records: ids, times and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ragsys.feedback.records import FeedbackRecord, new_record
from tests.fixtures.feedback import make_record


def test_new_record_fills_a_unique_id_and_utc_time() -> None:
    a, b = (new_record("q", "a", ["c1"], "v1", "up") for _ in range(2))
    assert a.id != b.id and len(a.id) == 32
    assert a.time.endswith("+00:00") and a.contexts == ("c1",)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"question": "  "}, "must not be empty"),
        ({"rating": "meh"}, "rating"),
        ({"time": "yesterday"}, "not ISO-8601"),
        ({"time": "2026-11-24T08:00:00"}, "no timezone"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_record_validation_rejects(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        FeedbackRecord.model_validate({**make_record(1).model_dump(), **change})


def test_blank_revision_and_comment_are_none() -> None:
    r = make_record(1, revision=" ", comment="")
    assert r.revision is None and r.comment is None
