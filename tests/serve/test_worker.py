"""The generation worker: one job at a time, in order, with a bounded queue."""

from __future__ import annotations

import threading

import pytest

from ragsys.serve.worker import GenerationWorker, QueueFullError
from tests.fixtures.serve import wait_for


def test_worker_runs_jobs_in_order_and_bounds_its_queue() -> None:
    worker, gate, seen = GenerationWorker(capacity=1), threading.Event(), []

    def slow() -> None:
        assert gate.wait(5)
        seen.append(1)

    first = worker.submit(slow)
    wait_for(worker.busy)
    second = worker.submit(lambda: seen.append(2))
    with pytest.raises(QueueFullError):
        worker.submit(lambda: seen.append(3))
    assert second.cancel()  # a job cancelled while queued never runs
    gate.set()
    first.result(5)
    err = worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        err.result(5)
    worker.stop()
    assert seen == [1]
