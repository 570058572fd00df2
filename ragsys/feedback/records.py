"""What the feedback store holds: judgements of answers, and the answers the server gave.

A `FeedbackRecord` is one thumb (and optionally a revision or a comment) on one answer,
with the chunk ids the generator saw, so it can be replayed against the same evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator

from ragsys.types import Frozen

Rating = Literal["up", "down"]


class FeedbackError(ValueError):
    """A feedback db or file cannot be used; the message names it and the fix."""

    def __str__(self) -> str:  # KeyError (in UnknownAnswerError's bases) would quote the message
        return Exception.__str__(self)


class UnknownAnswerError(FeedbackError, KeyError):
    """Feedback refers to an answer id the store never recorded (or a different db)."""


class StoreWriteError(FeedbackError):
    """A write did not reach the disk (disk full, I/O error, lock held too long) and was rolled
    back: nothing from it is stored, earlier records are intact, and the same write may be retried
    once the cause is gone. `reason` is SQLite's own words, without the db's path."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_id() -> str:
    return uuid.uuid4().hex


class FeedbackRecord(Frozen):
    """One judgement of one answer. `contexts` are the chunk ids the generator saw, so the
    record can be replayed against the same evidence."""

    id: str = Field(default_factory=_new_id, min_length=1)
    time: str = Field(default_factory=_now)
    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    pipeline_version: str
    rating: Rating
    revision: str | None = None
    comment: str | None = None
    # The /ask answer judged (None in records imported from elsewhere): repeated thumbs on one
    # answer are one judgement when training (`ragsys.feedback.select`). Last, so the column
    # added to an older db by ALTER TABLE lands in field order.
    answer_id: str | None = None

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("time")
    @classmethod
    def _time_is_iso_with_zone(cls, v: str) -> str:
        try:
            parsed = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not ISO-8601, e.g. '2026-11-24T08:00:00+00:00'") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{v!r} has no timezone; append '+00:00' (UTC)")
        return v

    @field_validator("revision", "comment")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        """A blank revision is no revision: otherwise stats would count empty text boxes."""
        return v if v is None or v.strip() else None


class StoredAnswer(Frozen):
    """What /ask produced, kept so /feedback can refer to it by id alone: the client never
    has to send back (and cannot tamper with) the question, answer or contexts."""

    answer_id: str = Field(min_length=1)
    time: str
    question: str
    answer: str
    contexts: tuple[str, ...]
    pipeline_version: str


class FeedbackStats(Frozen):
    total: int
    up: int
    down: int
    revisions: int
    comments: int
    by_pipeline_version: dict[str, dict[str, int]]  # version -> {"up": n, "down": n, "revisions": n}


class LineError(Frozen):
    line: int  # 1-based, as editors show it
    error: str


class ImportResult(Frozen):
    imported: int
    duplicates: int  # ids already in the store (or twice in the file): skipped, not an error
    errors: tuple[LineError, ...]


def new_record(
    question: str,
    answer: str,
    contexts: Iterable[str],
    pipeline_version: str,
    rating: Rating,
    revision: str | None = None,
    comment: str | None = None,
    answer_id: str | None = None,
) -> FeedbackRecord:
    """A record with a fresh uuid4 id and the current UTC time."""
    return FeedbackRecord(
        question=question, answer=answer, contexts=tuple(contexts), pipeline_version=pipeline_version,
        rating=rating, revision=revision, comment=comment, answer_id=answer_id,
    )  # fmt: skip


RECORD_FIELDS = tuple(FeedbackRecord.model_fields)  # the column order of both the table and the JSONL
