"""A write that cannot reach the disk is an error, stores nothing, harms nothing, and can be retried."""

from __future__ import annotations

import pytest

from ragsys.feedback.records import StoredAnswer, StoreWriteError
from ragsys.feedback.store import FeedbackStore
from tests.fixtures.feedback import T0, make_record
from tests.fixtures.store_faults import FailingCommit, fill_disk, free_disk

BIG = "x" * 19_000  # needs new pages whatever free space the last page has


def test_full_disk_refuses_the_write_keeps_earlier_records_and_recovers(store: FeedbackStore) -> None:
    earlier = [make_record(1), make_record(2, "down", revision="fixed")]
    store.add_many(earlier)
    fill_disk(store)
    with pytest.raises(StoreWriteError, match="database or disk is full; free disk space") as err:
        store.add(make_record(3, comment=BIG))
    assert err.value.reason == "database or disk is full" and str(store.path) not in err.value.reason
    with pytest.raises(StoreWriteError):
        store.add_many([make_record(4), make_record(5, comment=BIG)])  # all or nothing: 4 is not kept
    assert store.records() == earlier and store.get("r3") is None and store.get("r4") is None
    with FeedbackStore.open(store.path, readonly=True) as other:  # what is on disk, not in a cache
        assert other.records() == earlier
    free_disk(store)
    store.add(make_record(3, comment=BIG))
    assert store.count() == 3 and store.get("r3") == make_record(3, comment=BIG)


def test_failed_commit_stores_nothing_and_the_retry_succeeds(
    store: FeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ans = StoredAnswer(answer_id="a1", time=T0, question="why?", answer="because", contexts=("c1",),
                       pipeline_version="v1")  # fmt: skip
    store.record_answer(ans)
    store.add(make_record(1))
    disk = FailingCommit(store._conn)
    monkeypatch.setattr(store, "_conn", disk)
    with pytest.raises(StoreWriteError, match="disk I/O error; check the disk"):
        store.add_feedback_for("a1", "down", revision="since")
    with pytest.raises(StoreWriteError):
        store.record_answer(ans.model_copy(update={"answer_id": "a2"}))
    assert store.count() == 1 and store.get_answer("a2") is None and not disk.in_transaction
    disk.failing = False
    rec = store.add_feedback_for("a1", "down", revision="since")
    assert store.count() == 2 and store.get(rec.id) == rec and store.get("r1") == make_record(1)
