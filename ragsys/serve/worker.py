"""One thread runs every generation, fed by a bounded queue.

Why one: the model is loaded once and `generate` on a shared model is not meant to run
in several threads at once; on CPU two concurrent generations are no faster than two in
a row anyway. Why bounded: a request that would wait behind `capacity` others gets a
503 now, with a Retry-After, instead of a timeout later. Everything else the server does
(health, metrics, documents, feedback) runs outside this queue and never waits on it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[Future[Any], Callable[[], Any]]


class QueueFullError(Exception):
    """Every queue slot is taken; the caller should answer 503."""


class GenerationWorker:
    """Example:
    >>> worker = GenerationWorker(capacity=4)
    >>> worker.submit(lambda: 6 * 7).result()
    42
    >>> worker.stop()
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = threading.Event()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queues `fn`; cancelling the future before it starts removes the job."""
        self._ensure_started()
        future: Future[T] = Future()
        try:
            self._queue.put_nowait((future, fn))
        except queue.Full:
            raise QueueFullError(f"{self.capacity} requests are already waiting for the model") from None
        return future

    def depth(self) -> int:
        return self._queue.qsize()

    def busy(self) -> bool:
        return self._busy.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Lets queued jobs finish, then ends the thread (the sentinel waits its turn)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ragsys-generation", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue  # the client left while the job was waiting
            self._busy.set()
            try:
                future.set_result(fn())
            except BaseException as e:  # handed to whoever awaits the future
                future.set_exception(e)
            finally:
                self._busy.clear()
