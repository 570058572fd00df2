"""`ragsys feedback import|export|stats`: per-line errors, round trips, and a missing db left alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from ragsys.cli.feedback import feedback_app
from ragsys.feedback.records import new_record
from ragsys.feedback.store import FeedbackStore

runner = CliRunner()
app = typer.Typer()  # registered the way ragsys.cli does it, so the command paths match
app.add_typer(feedback_app, name="feedback")


def _run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["feedback", *args])
    return r.exit_code, r.stdout, r.stderr


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def _line(question: str, rating: str = "up", **kw: object) -> str:
    return json.dumps({"question": question, "answer": "a", "pipeline_version": "v1", "rating": rating, **kw})


def _jsonl(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_import_keeps_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "f.jsonl", [_line("q1"), "{oops", _line("q3", "meh"), _line("q4", id="x4")])
    db = str(tmp_path / "fb.sqlite")
    code, out, err = _run("import", f, "--feedback", db, "--json")
    assert code == 0
    assert f"{f}:2: bad JSON" in err and f"{f}:3: rating" in err
    result = _last_json(out)
    assert result["imported"] == 2 and result["duplicates"] == 0
    assert [e["line"] for e in result["errors"]] == [2, 3]
    assert set(result["errors"][0]) == {"line", "error"}
    code, out, _ = _run("import", f, "--feedback", db, "--json")  # again: x4 is a duplicate
    assert (code, _last_json(out)["imported"], _last_json(out)["duplicates"]) == (0, 1, 1)


def test_import_exits_2_when_every_line_is_bad(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "f.jsonl", ["nope", _line("")])
    code, out, err = _run("import", f, "--feedback", str(tmp_path / "fb.sqlite"), "--json")
    assert code == 2 and "imported 0" in err
    result = _last_json(out)
    assert (result["imported"], result["duplicates"]) == (0, 0)
    first, second = result["errors"]
    assert first["line"] == 1 and first["error"].startswith("bad JSON (")
    assert second == {"line": 2, "error": "question: must not be empty"}


def test_import_of_an_empty_file_succeeds(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "f.jsonl", [])
    code, out, _ = _run("import", f, "--feedback", str(tmp_path / "fb.sqlite"), "--json")
    assert (code, _last_json(out)) == (0, {"imported": 0, "duplicates": 0, "errors": []})


def test_import_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = _run("import", str(tmp_path / "none.jsonl"), "--feedback", str(tmp_path / "fb.sqlite"))
    assert code == 2 and "none.jsonl" in err and "cannot read" in err


def test_export_import_round_trip_through_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite"
    with FeedbackStore.open(db) as s:
        s.add(new_record("q1", "a1", ["c1", "c2"], "v1", "down", revision="better", comment="é"))
        s.add(new_record("q2", "a2", [], "v2", "up"))
    code, exported, err = _run("export", "--feedback", str(db))
    assert code == 0 and len(exported.splitlines()) == 2 and "exported 2" in err
    f = _jsonl(tmp_path / "e.jsonl", exported.splitlines())
    assert _run("import", f, "--feedback", str(tmp_path / "fresh.sqlite"))[0] == 0
    code, again, _ = _run("export", "--feedback", str(tmp_path / "fresh.sqlite"))
    assert code == 0 and again == exported


def test_stats_json_and_table(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite"
    with FeedbackStore.open(db) as s:
        s.add_many(
            [new_record("q", "a", [], "v1", "up", comment="ok"), new_record("q", "a", [], "v2", "down", "r")]
        )
    code, out, err = _run("stats", "--feedback", str(db), "--json")
    assert code == 0 and "v1" in err and "v2" in err
    assert _last_json(out) == {
        "total": 2, "up": 1, "down": 1, "revisions": 1, "comments": 1,
        "by_pipeline_version": {"v1": {"up": 1, "down": 0, "revisions": 0},
                                "v2": {"up": 0, "down": 1, "revisions": 1}},
    }  # fmt: skip


def test_stats_and_export_of_a_missing_db_exit_2_without_creating_it(tmp_path: Path) -> None:
    db = tmp_path / "none.sqlite"
    for cmd in ("stats", "export"):
        code, out, err = _run(cmd, "--feedback", str(db))
        assert code == 2 and out == "" and "no feedback db here" in err
    assert not db.exists()
