"""The SQLite feedback store: reads and writes, durability across SIGKILL, concurrent writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragsys.feedback.records import FeedbackError, FeedbackStats, StoredAnswer, UnknownAnswerError
from ragsys.feedback.store import FeedbackStore
from tests.fixtures.feedback import T0, make_record
from tests.fixtures.paths import REPO_ROOT

# --- store basics ---------------------------------------------------------------------------------


def test_add_get_records_count(store: FeedbackStore) -> None:
    recs = [
        make_record(3, "down", "v2", revision="better"),
        make_record(1),
        make_record(2, comment="nice"),
    ]
    for r in recs:
        store.add(r)
    assert store.count() == 3
    assert store.get("r3") == recs[0] and store.get("nope") is None
    assert store.records() == recs  # insertion order, not id order
    assert store.records("v1") == recs[1:]
    assert store.records("v9") == []


def test_stats_counts_by_rating_and_version(store: FeedbackStore) -> None:
    store.add_many(
        [
            make_record(1),
            make_record(2, "down", revision="fix"),
            make_record(3, "down", "v2", comment="hm"),
            make_record(4),
        ]
    )
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
    store.add(make_record(1))
    with pytest.raises(FeedbackError, match="r1.*already exists"):
        store.add(make_record(1, "down"))
    assert store.get("r1") == make_record(1)  # the failed add changed nothing
    assert store.add_many([make_record(1), make_record(2), make_record(2)]) == 1
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
    store.add(make_record(1))  # the rolled-back transaction left the store usable


def test_readonly_open_of_missing_db_is_clear(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(FeedbackError, match="none.sqlite: no feedback db here"):
        FeedbackStore.open(missing, readonly=True)
    assert not missing.exists()


def test_readonly_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    with FeedbackStore.open(tmp_path / "fb.sqlite") as w:
        w.add(make_record(1))
    with FeedbackStore.open(tmp_path / "fb.sqlite", readonly=True) as r:
        assert r.records() == [make_record(1)]
        with pytest.raises(FeedbackError, match="readonly"):
            r.add(make_record(2))


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
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(n), tag, mode], cwd=REPO_ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip


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
            s.add(make_record(t * 100 + i))
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
