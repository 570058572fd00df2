"""Questions in, stored answers out: retrieval and generation run on the worker thread,
and each answer is recorded in the feedback store before any client sees its id, so
feedback on it can never name an answer the store does not know (even after a crash).
Each answer is recorded against the version of the pipeline that produced it (the snapshot
the request pinned), so a pipeline swapped in mid-stream never takes credit for the old one's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncGenerator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from ragsys.feedback.records import StoredAnswer, StoreWriteError
from ragsys.feedback.store import FeedbackStore
from ragsys.index.filters import Filters
from ragsys.jsonshape import answer_json
from ragsys.serve.live import LiveIndex
from ragsys.serve.worker import GenerationWorker
from ragsys.types import Answer


class ClientGone(Exception):
    """Raised from the text callback to abort a streamed generation nobody will read."""


def stored_answer(question: str, answer: Answer, version: str) -> StoredAnswer:
    return StoredAnswer(
        answer_id=uuid.uuid4().hex, time=datetime.now(UTC).isoformat(timespec="seconds"),
        question=question, answer=answer.text, contexts=tuple(h.chunk.id for h in answer.contexts),
        pipeline_version=version,
    )  # fmt: skip


class Asker:
    """The /ask and /ask/stream logic, apart from HTTP so it can be read (and tested) alone."""

    def __init__(self, live: LiveIndex, store: FeedbackStore, worker: GenerationWorker):
        self.live, self.store, self.worker = live, store, worker

    async def ask(self, question: str, k: int | None, filters: Filters | None = None) -> dict[str, object]:
        """Raises QueueFullError at once when the queue is full."""

        def job() -> tuple[Answer, str]:
            with self.live.pinned() as snap:
                return snap.pipeline.answer(question, k, filters), snap.version

        answer, version = await asyncio.wrap_future(self.worker.submit(job))
        return await run_in_threadpool(self._finish, question, answer, version)

    def stream(
        self, question: str, k: int | None, filters: Filters | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Queues the job now (a full queue is a 503 before any byte is sent) and returns the
        NDJSON body: `{"event": "text", "text": ...}` lines, then one `{"event": "done",
        "result": <the /ask JSON>}` or `{"event": "error", "detail": ...}`."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        gone = threading.Event()

        def push(kind: str, value: object) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def on_text(piece: str) -> None:
            if gone.is_set():
                raise ClientGone
            push("text", piece)

        def job() -> None:
            try:
                with self.live.pinned() as snap:
                    push("done", (snap.pipeline.stream(question, k, on_text, filters), snap.version))
            except ClientGone:
                pass
            except Exception as e:  # reported in the stream: the 200 was already sent
                push("error", e)

        future = self.worker.submit(job)
        return self._events(question, events, future, gone)

    async def _events(
        self,
        question: str,
        events: asyncio.Queue[tuple[str, Any]],
        future: Future[None],
        gone: threading.Event,
    ) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                kind, value = await events.get()
                if kind == "text":
                    yield _line({"event": "text", "text": value})
                    continue
                if kind == "error":
                    yield _line({"event": "error", "detail": f"generation failed: {value}"})
                    return
                try:
                    result = await run_in_threadpool(self._finish, question, *value)
                except Exception as e:  # the client hears SQLite's reason, never the db's path
                    reason = e.reason if isinstance(e, StoreWriteError) else type(e).__name__
                    yield _line({"event": "error", "detail": f"the answer could not be stored ({reason}); "
                                 "nothing was saved, retry later"})  # fmt: skip
                    return
                yield _line({"event": "done", "result": result})
                return
        finally:  # the client left or the stream ended: stop generating, or never start
            gone.set()
            future.cancel()

    def _finish(self, question: str, answer: Answer, version: str) -> dict[str, object]:
        stored = stored_answer(question, answer, version)
        self.store.record_answer(stored)  # durable before the id leaves the server
        return answer_json(answer) | {"answer_id": stored.answer_id, "pipeline_version": version}


def _line(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
