from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from ragsys.feedback.jsonl import export_feedback, import_feedback, parse_feedback_jsonl
from ragsys.feedback.records import (
    FeedbackError,
    FeedbackRecord,
    FeedbackStats,
    StoredAnswer,
    UnknownAnswerError,
    new_record,
)
from ragsys.feedback.store import FeedbackStore

REPO = Path(__file__).resolve().parents[1]
T0 = "2026-11-24T08:00:00+00:00"


def _rec(i: int, rating: str = "up", version: str = "v1", **kw: str | None) -> FeedbackRecord:
    return FeedbackRecord.model_validate(
        {"id": f"r{i}", "time": T0, "question": f"q{i}", "answer": f"a{i}", "contexts": [f"c{i}"],
         "pipeline_version": version, "rating": rating, **kw}
    )  # fmt: skip


@pytest.fixture()
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore.open(tmp_path / "sub" / "fb.sqlite")


# --- records --------------------------------------------------------------------------------------


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
        FeedbackRecord.model_validate({**_rec(1).model_dump(), **change})


def test_blank_revision_and_comment_are_none() -> None:
    r = _rec(1, revision=" ", comment="")
    assert r.revision is None and r.comment is None


def test_pipeline_version_hashes_the_whole_config() -> None:
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config

    base = PipelineConfig(name="bm25", retrievers=(BM25Config(),))
    v = base.version()
    assert v.startswith("bm25-") and len(v) == len("bm25-") + 12
    assert PipelineConfig(name="bm25", retrievers=(BM25Config(),)).version() == v
    assert base.model_copy(update={"top_k": 3}).version() != v


# --- store basics ---------------------------------------------------------------------------------


def test_add_get_records_count(store: FeedbackStore) -> None:
    recs = [_rec(3, "down", "v2", revision="better"), _rec(1), _rec(2, comment="nice")]
    for r in recs:
        store.add(r)
    assert store.count() == 3
    assert store.get("r3") == recs[0] and store.get("nope") is None
    assert store.records() == recs  # insertion order, not id order
    assert store.records("v1") == recs[1:]
    assert store.records("v9") == []


def test_stats_counts_by_rating_and_version(store: FeedbackStore) -> None:
    store.add_many([_rec(1), _rec(2, "down", revision="fix"), _rec(3, "down", "v2", comment="hm"), _rec(4)])
    assert store.stats() == FeedbackStats(
        total=4, up=2, down=2, revisions=1, comments=1,
        by_pipeline_version={"v1": {"up": 2, "down": 1, "revisions": 1},
                             "v2": {"up": 0, "down": 1, "revisions": 0}},
    )  # fmt: skip


def test_empty_store_stats_are_zero(store: FeedbackStore) -> None:
    assert store.stats() == FeedbackStats(
        total=0, up=0, down=0, revisions=0, comments=0, by_pipeline_version={}
    )


def test_duplicate_id_is_an_error_for_add_and_skipped_by_add_many(store: FeedbackStore) -> None:
    store.add(_rec(1))
    with pytest.raises(FeedbackError, match="r1.*already exists"):
        store.add(_rec(1, "down"))
    assert store.get("r1") == _rec(1)  # the failed add changed nothing
    assert store.add_many([_rec(1), _rec(2), _rec(2)]) == 1
    assert store.count() == 2


def test_stored_answer_and_feedback_for_it(store: FeedbackStore) -> None:
    ans = StoredAnswer(answer_id="a1", time=T0, question="why?", answer="because [1]", contexts=("c1", "c2"),
                       pipeline_version="v1")  # fmt: skip
    store.record_answer(ans)
    assert store.get_answer("a1") == ans and store.get_answer("a2") is None
    with pytest.raises(FeedbackError, match="already stored"):
        store.record_answer(ans)
    rec = store.add_feedback_for("a1", "down", revision="since [2]", comment="wrong source")
    assert (rec.question, rec.answer, rec.contexts, rec.pipeline_version) == (
        "why?", "because [1]", ("c1", "c2"), "v1",
    )  # fmt: skip
    assert store.get(rec.id) == rec and store.count() == 1


def test_feedback_for_unknown_answer_is_a_key_error(store: FeedbackStore) -> None:
    with pytest.raises(UnknownAnswerError, match="no stored answer with id 'zz'") as info:
        store.add_feedback_for("zz", "up")
    assert isinstance(info.value, KeyError) and isinstance(info.value, FeedbackError)
    assert store.count() == 0
    store.add(_rec(1))  # the rolled-back transaction left the store usable


def test_readonly_open_of_missing_db_is_clear(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(FeedbackError, match="none.sqlite: no feedback db here"):
        FeedbackStore.open(missing, readonly=True)
    assert not missing.exists()


def test_readonly_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    with FeedbackStore.open(tmp_path / "fb.sqlite") as w:
        w.add(_rec(1))
    with FeedbackStore.open(tmp_path / "fb.sqlite", readonly=True) as r:
        assert r.records() == [_rec(1)]
        with pytest.raises(FeedbackError, match="readonly"):
            r.add(_rec(2))


def test_a_file_that_is_not_a_db_is_a_feedback_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not sqlite " * 100)
    for readonly in (False, True):
        with pytest.raises(FeedbackError, match="junk.sqlite"):
            FeedbackStore.open(junk, readonly=readonly)


# --- durability and concurrency -------------------------------------------------------------------


def test_store_runs_wal_with_full_sync(store: FeedbackStore) -> None:
    """A SIGKILL cannot tell NORMAL from FULL (the OS keeps the page cache); a power cut can."""
    conn = store._conn  # white-box: the setting is per connection and invisible from outside
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


_CHILD = """
import sys
from pathlib import Path
from ragsys.feedback.records import new_record
from ragsys.feedback.store import FeedbackStore
store = FeedbackStore.open(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    r = new_record(f"q{i}", "a", [], sys.argv[3], "up")
    store.add(r)
    if sys.argv[4] == "report":
        print(r.id, flush=True)
if sys.argv[4] == "report":
    sys.stdin.read()  # wait to be killed
"""


def _child(db: Path, n: int, tag: str, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(n), tag, mode], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_records_survive_sigkill_and_are_visible_at_once(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite"
    reader = FeedbackStore.open(db)  # opened before the child writes
    child = _child(db, 5, "v1", "report")
    assert child.stdout is not None
    for _ in range(5):
        record_id = child.stdout.readline().strip()
        assert reader.get(record_id) is not None  # visible as soon as add() returned
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    reader.close()
    with FeedbackStore.open(db, readonly=True) as after:
        assert after.count() == 5


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite"
    children = [_child(db, 40, f"p{k}", "quiet") for k in range(2)]
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    with FeedbackStore.open(db) as s:
        assert {v: c["up"] for v, c in s.stats().by_pipeline_version.items()} == {"p0": 40, "p1": 40}


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_threads_lose_nothing(tmp_path: Path, shared: bool) -> None:
    db = tmp_path / "fb.sqlite"
    common = FeedbackStore.open(db)

    def write(t: int) -> None:
        s = common if shared else FeedbackStore.open(db)
        for i in range(25):
            s.add(_rec(t * 100 + i))
        if not shared:
            s.close()

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.id for r in common.records()) == sorted(
        f"r{t * 100 + i}" for t in range(6) for i in range(25)
    )


# --- JSONL import / export ------------------------------------------------------------------------


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _good(i: int, **kw: object) -> str:
    return json.dumps({**_rec(i).model_dump(mode="json"), **kw})


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
    store.add(_rec(1))
    path = _write_lines(tmp_path / "f.jsonl", [_good(1), _good(2), "oops", _good(2), _good(3)])
    result = import_feedback(store, path)
    assert (result.imported, result.duplicates, [e.line for e in result.errors]) == (2, 2, [3])
    assert [r.id for r in store.records()] == ["r1", "r2", "r3"]


def test_export_then_import_round_trips(store: FeedbackStore, tmp_path: Path) -> None:
    store.add_many([_rec(2, "down", revision="fixed", comment="ü"), _rec(1)])
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
