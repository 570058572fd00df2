"""Feedback JSONL: parsing with per-line errors, import with duplicates, export round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ragsys.feedback.jsonl import export_feedback, import_feedback, parse_feedback_jsonl
from ragsys.feedback.records import FeedbackError, new_record
from ragsys.feedback.store import FeedbackStore
from tests.fixtures.feedback import make_record


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _good(i: int, **kw: object) -> str:
    return json.dumps({**make_record(i).model_dump(mode="json"), **kw})


def test_parse_reports_each_bad_line_and_keeps_good_ones(tmp_path: Path) -> None:
    minimal = {"question": "q9", "answer": "a", "pipeline_version": "v1", "rating": "down"}
    path = _write_lines(tmp_path / "f.jsonl", [
        _good(1),
        '{"question": "q", ',                                   # 2 bad JSON
        json.dumps({"answer": "a", "pipeline_version": "v1", "rating": "up"}),  # 3 missing question
        _good(4, colour="red"),                                 # 4 unknown field
        _good(5, rating="meh"),                                 # 5 bad rating
        "",                                                     # 6 blank: skipped, not an error
        _good(7, question=""),                                  # 7 empty question
        json.dumps(minimal),                                    # 8 id and time filled in
        "[1, 2]",                                               # 9 not an object
    ])  # fmt: skip
    records, errors = parse_feedback_jsonl(path)
    assert [r.question for r in records] == ["q1", "q9"]
    assert records[1].id and records[1].time
    assert [e.line for e in errors] == [2, 3, 4, 5, 7, 9]
    msgs = dict((e.line, e.error) for e in errors)
    assert "bad JSON" in msgs[2]
    assert "question: missing field" in msgs[3]
    assert "unknown field(s) colour" in msgs[4]
    assert "rating" in msgs[5] and "'up' or 'down'" in msgs[5]
    assert msgs[7] == "question: must not be empty"
    assert "JSON object" in msgs[9]


def test_parse_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FeedbackError, match="nope.jsonl: cannot read"):
        parse_feedback_jsonl(tmp_path / "nope.jsonl")


def test_import_counts_duplicates_and_errors(store: FeedbackStore, tmp_path: Path) -> None:
    store.add(make_record(1))
    path = _write_lines(tmp_path / "f.jsonl", [_good(1), _good(2), "oops", _good(2), _good(3)])
    result = import_feedback(store, path)
    assert (result.imported, result.duplicates, [e.line for e in result.errors]) == (2, 2, [3])
    assert [r.id for r in store.records()] == ["r1", "r2", "r3"]


def test_export_then_import_round_trips(store: FeedbackStore, tmp_path: Path) -> None:
    store.add_many([make_record(2, "down", revision="fixed", comment="ü"), make_record(1)])
    store.add(new_record("q new", "a", ["c9", "c8"], "v2", "up"))
    first = io.StringIO()
    assert export_feedback(store, first) == 3
    path = tmp_path / "out.jsonl"
    path.write_text(first.getvalue(), encoding="utf-8")
    with FeedbackStore.open(tmp_path / "fresh.sqlite") as fresh:
        assert import_feedback(fresh, path).model_dump() == {"imported": 3, "duplicates": 0, "errors": ()}
        assert fresh.records() == store.records()
        again = io.StringIO()
        export_feedback(fresh, again)
    assert again.getvalue() == first.getvalue()
