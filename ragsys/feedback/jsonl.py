"""Feedback as JSON lines: what `ragsys feedback export` writes and `import` reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from ragsys.feedback.records import RECORD_FIELDS, FeedbackError, FeedbackRecord, ImportResult, LineError
from ragsys.feedback.store import FeedbackStore


def parse_feedback_jsonl(path: Path) -> tuple[list[FeedbackRecord], list[LineError]]:
    """Every bad line is reported with its 1-based number and the good ones are kept: one typo
    should not throw away a day of collected feedback. Blank lines are skipped."""
    try:
        raw_lines = Path(path).read_bytes().splitlines()
    except OSError as e:
        raise FeedbackError(f"{path}: cannot read the feedback file ({e.strerror}); check the path") from e
    records: list[FeedbackRecord] = []
    errors: list[LineError] = []
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            records.append(_parse_line(raw))
        except ValueError as e:
            errors.append(LineError(line=number, error=str(e)))
    return records, errors


def _parse_line(raw: bytes) -> FeedbackRecord:
    """One JSONL line as a record; every problem is a ValueError with a readable message."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"bad JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(RECORD_FIELDS)}")
    try:
        return FeedbackRecord.model_validate(obj)
    except ValidationError as e:
        raise ValueError(_validation_message(e)) from None


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "record"
        msg = "missing field" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def import_feedback(store: FeedbackStore, path: Path) -> ImportResult:
    records, errors = parse_feedback_jsonl(path)
    added = store.add_many(records)
    return ImportResult(imported=added, duplicates=len(records) - added, errors=tuple(errors))


def export_feedback(store: FeedbackStore, out: TextIO) -> int:
    """Writes exactly what `parse_feedback_jsonl` reads, in insertion order."""
    records = store.records()
    for r in records:
        out.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
    return len(records)
