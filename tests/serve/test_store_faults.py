"""When the feedback store cannot write (disk full, I/O error) the API says so with a 503 and never
answers 200 (or hands out an answer_id) for something that is not on disk."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ragsys.feedback.store import FeedbackStore
from tests.fixtures.serve import ask
from tests.fixtures.store_faults import FailingCommit, fill_disk, free_disk

BIG = "r" * 19_000  # under the 20000-character limit, but it needs new pages in the db


def test_feedback_on_a_full_disk_is_503_and_stores_nothing(client: TestClient, store: FeedbackStore) -> None:
    first = ask(client)
    kept = client.post("/feedback", json={"answer_id": first["answer_id"], "rating": "up"})
    assert kept.status_code == 200
    fill_disk(store)
    body = {"answer_id": first["answer_id"], "rating": "down", "revision": BIG}
    r = client.post("/feedback", json=body)
    assert r.status_code == 503 and r.headers["retry-after"] == "30", r.text
    assert r.json()["detail"].startswith(
        "not stored: the feedback store could not write (database or disk is full)"
    )
    assert str(store.path) not in r.text  # the server's paths stay on the server
    assert [rec.id for rec in store.records()] == [kept.json()["id"]]
    free_disk(store)
    again = client.post("/feedback", json=body)
    assert again.status_code == 200 and store.get(again.json()["id"]).revision == BIG  # type: ignore[union-attr]
    assert store.count() == 2


def test_an_answer_that_cannot_be_stored_gets_no_answer_id(
    client: TestClient, store: FeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FailingCommit(store._conn, "database or disk is full")
    monkeypatch.setattr(store, "_conn", disk)
    r = client.post("/ask", json={"question": "how fast does the belt run"})
    assert r.status_code == 503 and "database or disk is full" in r.json()["detail"], r.text
    events = [json.loads(x) for x in client.post("/ask/stream", json={"question": "belt"}).text.splitlines()]
    assert events[-1]["event"] == "error" and "could not be stored" in events[-1]["detail"]
    assert all(e["event"] != "done" for e in events)  # no answer_id was handed out
    assert str(store.path) not in events[-1]["detail"]
    assert store._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    disk.failing = False
    out = ask(client)
    assert store.get_answer(str(out["answer_id"])) is not None
