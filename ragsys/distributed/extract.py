"""The driver's side of extraction on Ray: files in flight, time limits, lost workers.

At most `bound` files are in flight: each is read (or, under the shared path, only named)
just before it is sent, and its bytes are dropped once its answer is back, so the driver's
memory does not grow with the corpus. Answers are yielded as they arrive, largest files
being sent first (no long tail), as in `extract_many`.

Failures match the local pool's: a file over its time limit is cancelled (`force=True`
kills the worker process, which also stops C code) and reported as `ExtractionTimeout`; a
worker that dies is retried by Ray (`MAX_RETRIES`), and a file that kills its worker every
time is reported as `WorkerCrashError`. As in the pool, the limit runs from when a worker
begins the file, not from sending it: a `FileClock` actor notes when each attempt begins,
so neither queueing nor a fresh (or retried) worker's start-up counts against a file.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ragsys.chunk.chunker import ChunkConfig
from ragsys.distributed.files import Build, FileJob, FileOutcome, chunk_documents, extract_file
from ragsys.extract import (
    ExtractionError,
    ExtractionTimeout,
    ExtractorConfig,
    ExtractResult,
    WorkerCrashError,
)
from ragsys.types import Chunk, Document

MAX_RETRIES = 2  # a lost node or an OOM-killed worker is retried; a file that kills it 3 times is bad


class _InFlight:
    def __init__(self, path: str, sent: float) -> None:
        self.path, self.sent = path, sent


class FileClock:
    """A Ray actor (no CPU): when the running attempt at each file began, on one clock."""

    def __init__(self) -> None:
        self._began: dict[str, float] = {}

    def begin(self, path: str) -> None:
        self._began[path] = time.monotonic()

    def end(self, path: str) -> None:
        self._began.pop(path, None)

    def overdue(self, limit: float) -> list[str]:
        now = time.monotonic()
        return [p for p, t in self._began.items() if now - t > limit]


def timed_extract(
    job: FileJob, config: ExtractorConfig, chunking: ChunkConfig, build: Build, clock: Any
) -> FileOutcome:
    """The Ray task: `extract_file`, telling the clock when its extraction begins and ends."""
    return extract_file(
        job, config, chunking, build, begin=lambda p: clock.begin.remote(p), end=lambda p: clock.end.remote(p)
    )


def extract_on_ray(
    ray: ModuleType,
    paths: Sequence[Path],
    config: ExtractorConfig,
    chunking: ChunkConfig,
    *,
    bound: int,
    shared_path: Path | None,
    build: Build,
) -> Iterator[FileOutcome]:
    """One outcome per path, in completion order; never raises for a bad file."""
    clock = ray.remote(num_cpus=0)(FileClock).remote()
    try:
        yield from _run(ray, clock, paths, config, chunking, bound, shared_path, build)
    finally:
        ray.kill(clock)


def _run(
    ray: ModuleType, clock: Any, paths: Sequence[Path], config: ExtractorConfig, chunking: ChunkConfig,
    bound: int, shared_path: Path | None, build: Build,
) -> Iterator[FileOutcome]:  # fmt: skip
    remote = ray.remote(max_retries=MAX_RETRIES, num_cpus=1)(timed_extract)
    config_ref, chunking_ref = ray.put(config), ray.put(chunking)
    pending = deque(sorted(paths, key=_size, reverse=True))
    flying: dict[Any, _InFlight] = {}
    while pending or flying:
        while pending and len(flying) < bound:
            path = pending.popleft()
            try:
                job = _job(path, shared_path)
            except OSError as e:
                yield _failed(str(path), ExtractionError(str(path), f"cannot read: {e.strerror}"))
                continue
            ref = remote.remote(job, config_ref, chunking_ref, build, clock)
            flying[ref] = _InFlight(str(path), time.monotonic())
        if not flying:
            continue
        ready, _ = ray.wait(list(flying), num_returns=1, timeout=1.0)  # at least once a second:
        for ref in ready:
            yield _collect(ray, clock, ref, flying.pop(ref))
        overdue = set(ray.get(clock.overdue.remote(config.timeout_s)))  # ...look at the clock
        yield from _cancel(ray, clock, flying, overdue, config.timeout_s)


def _job(path: Path, shared_path: Path | None) -> FileJob:
    if shared_path is not None and path.resolve().is_relative_to(shared_path.resolve()):
        return FileJob(str(path), None)
    return FileJob(str(path), path.read_bytes())


def _collect(ray: ModuleType, clock: Any, ref: Any, job: _InFlight) -> FileOutcome:
    lost = (
        ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
        ray.exceptions.ObjectLostError, ray.exceptions.OutOfMemoryError,
    )  # fmt: skip
    try:
        outcome: FileOutcome = ray.get(ref)
    except lost as e:
        clock.end.remote(job.path)  # the last attempt died before it could say so
        reason = (
            f"the Ray worker died {MAX_RETRIES + 1} times while extracting it ({type(e).__name__}); "
            "the file crashes the extractor or the node runs out of memory"
        )
        return _failed(job.path, WorkerCrashError(job.path, reason), time.monotonic() - job.sent)
    return outcome


def _cancel(
    ray: ModuleType, clock: Any, flying: dict[Any, _InFlight], overdue: set[str], timeout_s: float
) -> Iterator[FileOutcome]:
    now = time.monotonic()
    for ref, job in [(r, j) for r, j in flying.items() if j.path in overdue]:
        ray.cancel(ref, force=True)
        clock.end.remote(job.path)
        del flying[ref]
        error = ExtractionTimeout(job.path, f"extraction took longer than {timeout_s:g} s")
        yield _failed(job.path, error, now - job.sent)


def _failed(path: str, error: ExtractionError, seconds: float = 0.0) -> FileOutcome:
    return FileOutcome(ExtractResult(path, None, str(error), type(error).__name__, seconds), None, "")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def chunk_on_ray(
    ray: ModuleType, docs: Sequence[Document], chunking: ChunkConfig, *, batch: int, bound: int
) -> Iterator[tuple[Document, list[Chunk]]]:
    """Chunks of ready documents, `batch` per task and at most `bound` tasks in flight."""
    remote = ray.remote(max_retries=MAX_RETRIES, num_cpus=1)(chunk_documents)
    chunking_ref = ray.put(chunking)
    parts = deque(docs[i : i + batch] for i in range(0, len(docs), batch))
    flying: dict[Any, Sequence[Document]] = {}
    while parts or flying:
        while parts and len(flying) < bound:
            part = parts.popleft()
            flying[remote.remote(part, chunking_ref)] = part
        ready, _ = ray.wait(list(flying), num_returns=1)
        for ref in ready:
            part = flying.pop(ref)
            yield from zip(part, ray.get(ref), strict=True)
