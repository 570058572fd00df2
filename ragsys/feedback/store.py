"""The feedback store: records and served answers in one SQLite file, durable before a reply.

Feedback is the raw material for later training (a revision is the CLAIR signal: the
answer as it should have been), so a record the caller was told is saved must survive a
crash: WAL with synchronous=FULL, and every write is one transaction committed before the
call returns. The HTTP server writes from several threads and a CLI import may run at the
same time, so writers take the lock up front (`BEGIN IMMEDIATE`) and wait on
`busy_timeout` instead of failing.

Example:
    >>> import tempfile
    >>> with FeedbackStore.open(Path(tempfile.mkdtemp()) / "fb.sqlite") as store:
    ...     store.add(new_record("why?", "because", ("c1",), "bm25-0123abcd4567", "up"))
    ...     store.count()
    1
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from ragsys.feedback.records import (
    RECORD_FIELDS,
    FeedbackError,
    FeedbackRecord,
    FeedbackStats,
    Rating,
    StoredAnswer,
    StoreWriteError,
    UnknownAnswerError,
    new_record,
)

BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another thread/process to commit
SCHEMA_VERSION = 2  # 2: feedback.answer_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order, never reused
    id TEXT NOT NULL UNIQUE, time TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    contexts TEXT NOT NULL,                 -- JSON array of chunk ids
    pipeline_version TEXT NOT NULL, rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    revision TEXT, comment TEXT, answer_id TEXT);
CREATE INDEX IF NOT EXISTS feedback_pipeline_version ON feedback (pipeline_version);
CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY, time TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    contexts TEXT NOT NULL, pipeline_version TEXT NOT NULL);
"""
_ANSWER_FIELDS = tuple(StoredAnswer.model_fields)
_INSERT = f"INSERT INTO feedback ({', '.join(RECORD_FIELDS)}) VALUES ({', '.join('?' * len(RECORD_FIELDS))})"
ADDED_COLUMNS = ("answer_id",)  # feedback columns newer than the first schema: older dbs lack them

Row = tuple[Any, ...]


def _to_row(model: FeedbackRecord | StoredAnswer) -> Row:
    """Column values in field order; `contexts` is stored as a JSON array."""
    return tuple(json.dumps(v) if k == "contexts" else v for k, v in model.model_dump().items())


def _from_row(fields: tuple[str, ...], row: Row) -> dict[str, Any]:
    return {k: json.loads(v) if k == "contexts" else v for k, v in zip(fields, row, strict=True)}


class FeedbackStore:
    """SQLite, WAL, synchronous=FULL; every write is one committed transaction before the call
    returns. One connection shared under a lock makes it safe from several threads; other
    processes coordinate through SQLite's file locks and `busy_timeout`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path, self._conn, self._lock = path, conn, threading.Lock()
        have = _columns(conn)  # a read-only older db lacks the newer columns: read them as NULL
        cols = (f if f in have else f"NULL AS {f}" for f in RECORD_FIELDS)
        self._select = f"SELECT {', '.join(cols)} FROM feedback"

    @classmethod
    def open(cls, path: Path, readonly: bool = False) -> FeedbackStore:
        """Creates the db (and its parent folder) unless `readonly`, where it must exist."""
        path = Path(path)
        try:
            conn = _connect_readonly(path) if readonly else _connect_writable(path)
        except sqlite3.Error as e:
            raise FeedbackError(
                f"{path}: cannot open the feedback db ({e}); is it a ragsys feedback db?"
            ) from e
        return cls(path, conn)

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction that holds the write lock from its start, so a concurrent writer
        waits on busy_timeout instead of failing on a read-to-write upgrade."""
        with self._lock, self._errors(writing=True):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        """After a failed statement or COMMIT (SQLite may already have rolled back on a full disk or
        an I/O error); a failing ROLLBACK must not hide the error that caused it."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable; SQLite rolls the journal back on the next open

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._conn

    @contextmanager
    def _errors(self, writing: bool = False) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            hints = {"locked": "; another process held the write lock too long, retry",
                     "readonly": "; open the store without readonly=True to write",
                     "full": "; free disk space, then retry: nothing from this write was stored",
                     "I/O": "; check the disk, then retry: nothing from this write was stored"}  # fmt: skip
            hint = next((h for k, h in hints.items() if k in str(e)), "")
            if writing and isinstance(e, sqlite3.OperationalError):
                raise StoreWriteError(f"{self.path}: {e}{hint}", reason=str(e)) from e
            raise FeedbackError(f"{self.path}: {e}{hint}") from e

    def add(self, record: FeedbackRecord) -> None:
        with self._write() as conn:
            try:
                conn.execute(_INSERT, _to_row(record))
            except sqlite3.IntegrityError:
                raise FeedbackError(
                    f"{self.path}: a feedback record with id {record.id!r} already exists; "
                    "give it a new id (new_record makes one)"
                ) from None

    def add_many(self, records: Iterable[FeedbackRecord]) -> int:
        """All in one transaction, so an import is all-or-nothing; duplicate ids are skipped."""
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT + " ON CONFLICT (id) DO NOTHING", (_to_row(r) for r in records))
            return conn.total_changes - before

    def get(self, record_id: str) -> FeedbackRecord | None:
        with self._read() as conn:
            row = conn.execute(self._select + " WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else FeedbackRecord.model_validate(_from_row(RECORD_FIELDS, row))

    def records(self, pipeline_version: str | None = None) -> list[FeedbackRecord]:
        where, args = (
            ("", ()) if pipeline_version is None else (" WHERE pipeline_version = ?", (pipeline_version,))
        )
        with self._read() as conn:
            rows = conn.execute(self._select + where + " ORDER BY seq", args).fetchall()
        return [FeedbackRecord.model_validate(_from_row(RECORD_FIELDS, r)) for r in rows]

    def count(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def stats(self) -> FeedbackStats:
        query = """SELECT pipeline_version, SUM(rating = 'up'), SUM(rating = 'down'),
                          SUM(revision IS NOT NULL), SUM(comment IS NOT NULL)
                   FROM feedback GROUP BY pipeline_version ORDER BY pipeline_version"""
        with self._read() as conn:
            rows = conn.execute(query).fetchall()
        up, down, revisions, comments = (sum(r[i] for r in rows) for i in range(1, 5))
        return FeedbackStats(
            total=up + down, up=up, down=down, revisions=revisions, comments=comments,
            by_pipeline_version={v: {"up": u, "down": d, "revisions": rv} for v, u, d, rv, _ in rows},
        )  # fmt: skip

    def record_answer(self, answer: StoredAnswer) -> None:
        with self._write() as conn:
            try:
                conn.execute(
                    f"INSERT INTO answers VALUES ({', '.join('?' * len(_ANSWER_FIELDS))})", _to_row(answer)
                )
            except sqlite3.IntegrityError:
                raise FeedbackError(
                    f"{self.path}: answer id {answer.answer_id!r} is already stored; answer ids are unique"
                ) from None

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._read() as conn:
            return _find_answer(conn, answer_id)

    def add_feedback_for(
        self, answer_id: str, rating: Rating, revision: str | None = None, comment: str | None = None
    ) -> FeedbackRecord:
        """Reads the answer and inserts the record in one transaction: no other writer can
        slip in between, and the record carries exactly what the user saw."""
        with self._write() as conn:
            stored = _find_answer(conn, answer_id)
            if stored is None:
                raise UnknownAnswerError(
                    f"{self.path}: no stored answer with id {answer_id!r}; "
                    "send the answer_id that /ask returned, to the server that returned it"
                )
            record = new_record(stored.question, stored.answer, stored.contexts, stored.pipeline_version,
                                rating, revision, comment, answer_id)  # fmt: skip
            conn.execute(_INSERT, _to_row(record))
        return record


def _find_answer(conn: sqlite3.Connection, answer_id: str) -> StoredAnswer | None:
    row = conn.execute(
        f"SELECT {', '.join(_ANSWER_FIELDS)} FROM answers WHERE answer_id = ?", (answer_id,)
    ).fetchone()
    return None if row is None else StoredAnswer.model_validate(_from_row(_ANSWER_FIELDS, row))


def _connect_writable(path: Path) -> sqlite3.Connection:
    """Opens (creating if needed) with WAL and full sync. Several processes opening a fresh db at
    once can get "database is locked" from the switch to WAL without SQLite's busy handler ever
    being called (it refuses to wait where waiting could deadlock), so that step is retried."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _setup_writable(path)
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _setup_writable(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits implicitly
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: stored in the file once set
        conn.execute("PRAGMA synchronous = FULL")  # per connection: fsync the WAL at every commit
        conn.execute("BEGIN IMMEDIATE")  # closing the connection below rolls it back on an error
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        _migrate(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {str(r[1]) for r in conn.execute("PRAGMA table_info(feedback)")}


def _migrate(conn: sqlite3.Connection) -> None:
    """Adds the columns an older db lacks (a new db's CREATE TABLE has them all), inside the
    schema's write transaction, so two processes opening an older db at once add each only once."""
    have = _columns(conn)
    for column in ADDED_COLUMNS:
        if column not in have:
            conn.execute(f"ALTER TABLE feedback ADD COLUMN {column} TEXT")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FeedbackError(
            f"{path}: no feedback db here; check the --feedback path, or create one with "
            "`ragsys feedback import FILE.jsonl --feedback DB` (or the server's /feedback)"
        )
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except BaseException:
        conn.close()
        raise
    if not {"feedback", "answers"} <= tables:
        conn.close()
        raise FeedbackError(
            f"{path}: not a ragsys feedback db (no feedback table); check the --feedback path"
        )
    return conn
