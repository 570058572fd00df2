"""Extract many files in worker processes, with a time limit per file.

A `ProcessPoolExecutor` cannot kill one task, so a PDF that makes MuPDF loop
forever would hang the run. Here each worker is a process of our own, fed one
file at a time over a pipe: one that overruns its file's time limit is killed
(SIGKILL, which also stops C code) and replaced, its file is reported as an
`ExtractionTimeout`, and the run goes on. A worker that dies (a segfault in a
PDF library) is reported and replaced the same way.

Each worker's address space is capped (config `max_memory_mb`, RLIMIT_AS), so a
decompression bomb (a font or image stream that inflates to gigabytes) fails an
allocation instead of taking the machine: MuPDF raises, the page is skipped, and a
file with nothing left is a typed `MemoryLimitError`. Workers die with the parent
process (Linux), so killing a run never leaves one behind. eval/bench/fuzz_pdfs.py
runs thousands of mutated PDFs through this pool.

Workers are *spawned*, not forked: `import pymupdf` starts onnxruntime's thread
pool for the layout model, and a forked child of a process holding it can
deadlock. The time limit starts when a ready worker receives its file, so
worker start-up (about a second of imports) never counts against a file.

With `workers > 1` files are handed out largest first (no long tail at the end)
and results are yielded as they complete, not in input order (`ExtractResult.path`
says which file). Each worker runs PyMuPDF's layout model on one thread
(runtime.py), so N workers keep N cores busy. With `workers=1` files are
extracted in-process, in input order, so a debugger and tracebacks work; the time
limit is then enforced with SIGALRM, which interrupts Python code but not a single
long C call, and only when called from the main thread of a POSIX process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import NamedTuple

from ragsys.extract.config import ExtractorConfig, extractor_for
from ragsys.extract.errors import ExtractionError, ExtractionTimeout, WorkerCrashError, out_of_memory
from ragsys.protocols import Extractor
from ragsys.types import Document

Build = Callable[[ExtractorConfig], Extractor]
_READY = "ready"
_PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h
_MAX_START_FAILURES = 3  # workers dying before they are ready: a broken install, not a bad file


class ExtractResult(NamedTuple):
    """One file's outcome: a document, or the error's message and class name."""

    path: str
    document: Document | None
    error: str | None
    error_type: str | None
    seconds: float


def extract_many(
    paths: Sequence[Path],
    config: ExtractorConfig,
    workers: int = 2,
    timeout_s: float | None = None,
    on_result: Callable[[ExtractResult], None] | None = None,
    *,
    build: Build = extractor_for,
) -> Iterator[ExtractResult]:
    """Extract every path; never raises for a bad file. `timeout_s` defaults to `config.timeout_s`.

    `build` turns the config into an extractor inside each worker; it must be a
    module-level function (it is pickled to spawned workers). Tests pass fakes.
    """
    limit = config.timeout_s if timeout_s is None else timeout_s
    results = (
        _in_process(paths, config, limit, build)
        if workers <= 1
        else _pool(paths, config, workers, limit, build)
    )
    for result in results:
        if on_result is not None:
            on_result(result)
        yield result


def extract_one(extractor: Extractor, path: Path, limit_mb: int | None = None) -> ExtractResult:
    """Run one extraction, turning any exception into an error result (`limit_mb`: the cap, if any)."""
    start = time.perf_counter()
    try:
        document = extractor.extract(path)
    except MemoryError as exc:  # raised by Python code once the worker's address space is full
        error = out_of_memory(str(path), limit_mb, f"{type(exc).__name__}: {exc}")
        return _failure(str(path), error, time.perf_counter() - start)
    except Exception as exc:  # a bug in an extractor must not stop a batch either
        return ExtractResult(str(path), None, str(exc), type(exc).__name__, time.perf_counter() - start)
    return ExtractResult(str(path), document, None, None, time.perf_counter() - start)


def _failure(path: str, error: ExtractionError, seconds: float) -> ExtractResult:
    return ExtractResult(path, None, str(error), type(error).__name__, seconds)


# ---- workers=1: in this process --------------------------------------------------------------


class _Alarm(BaseException):
    """Raised by SIGALRM; a BaseException so the extractors' `except Exception` cannot swallow it."""


def _in_process(
    paths: Sequence[Path], config: ExtractorConfig, limit: float, build: Build
) -> Iterator[ExtractResult]:
    extractor = build(config)
    for path in paths:
        start = time.perf_counter()
        try:
            with _alarm(limit):
                result = extract_one(extractor, path)
        except _Alarm:
            error = ExtractionTimeout(str(path), f"extraction took longer than {limit:g} s")
            result = _failure(str(path), error, time.perf_counter() - start)
        yield result


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield  # no way to interrupt this thread: documented limitation
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- workers>1: killable worker processes ----------------------------------------------------


def _serve(conn: Connection, config: ExtractorConfig, build: Build) -> None:
    """Worker main loop: cap memory, build once, then extract each path received until None."""
    _die_with_parent()
    limit_mb = cap_memory(config.max_memory_mb)
    extractor = build(config)
    conn.send(_READY)
    while (path := conn.recv()) is not None:
        conn.send(extract_one(extractor, Path(path), limit_mb))


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when the process that spawned it dies.

    Without it a parent killed mid-run (kill -9, an OOM kill) leaves a worker that is stuck in a
    bomb or a MuPDF loop running on with no one to enforce its time limit: it only notices the
    closed pipe once the file is done. (The signal follows the spawning *thread*; `extract_many`
    spawns from the thread that iterates it.)
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl in this libc: keep the pipe-EOF exit
        return


def cap_memory(limit_mb: int | None) -> int | None:
    """Limit this process's address space, so a decompression bomb fails an allocation (MuPDF
    raises, Python raises MemoryError) instead of taking the machine. Returns the cap in MB.

    RLIMIT_AS rather than RLIMIT_DATA: it also bounds mmap'd and C++ allocations. Only worker
    processes are capped; `workers=1` runs in the caller's process, which it must not limit.
    """
    if limit_mb is None or not hasattr(resource, "RLIMIT_AS"):
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = limit_mb << 20
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    return want >> 20


@dataclass(eq=False)  # workers are compared by identity
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    path: str | None = None
    started: float = 0.0


def _pool(
    paths: Sequence[Path], config: ExtractorConfig, workers: int, limit: float, build: Build
) -> Iterator[ExtractResult]:
    pool = _Pool(config, build, limit)
    try:
        yield from pool.run([str(p) for p in paths], workers)
    finally:
        pool.close()


class _Pool:
    """The parent's side: hands out files, collects results, kills overdue workers."""

    def __init__(self, config: ExtractorConfig, build: Build, limit: float) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._config, self._build, self._limit = config, build, limit
        self._workers: list[_Worker] = []
        self._start_failures = 0

    def run(self, paths: list[str], workers: int) -> Iterator[ExtractResult]:
        pending = deque(sorted(paths, key=_size, reverse=True))
        self._workers = [self._spawn() for _ in range(min(workers, len(pending)))]
        while pending or any(w.path is not None for w in self._workers):
            for worker in self._workers:
                if worker.ready and worker.path is None and pending:
                    worker.path, worker.started = pending.popleft(), time.monotonic()
                    worker.conn.send(worker.path)
            for conn in wait(
                [w.conn for w in self._workers], timeout=_next_deadline(self._workers, self._limit)
            ):
                yield from self._receive(next(w for w in self._workers if w.conn is conn))
            yield from self._reap_overdue()

    def close(self) -> None:
        for worker in self._workers:
            _stop(worker)

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self._config, self._build), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _receive(self, worker: _Worker) -> Iterator[ExtractResult]:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            if not worker.ready:
                self._start_failures += 1
                if self._start_failures >= _MAX_START_FAILURES:
                    raise RuntimeError(
                        "extraction workers die on start-up; run with workers=1 to see why"
                    ) from None
            if worker.path is not None:
                yield _crashed(worker)
            self._replace(worker)
            return
        if message == _READY:
            worker.ready = True
        else:
            worker.path = None
            yield message

    def _reap_overdue(self) -> Iterator[ExtractResult]:
        now = time.monotonic()
        for worker in [w for w in self._workers if w.path is not None and now - w.started > self._limit]:
            path = worker.path or ""
            error = ExtractionTimeout(path, f"extraction took longer than {self._limit:g} s")
            yield _failure(path, error, now - worker.started)
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        _kill(worker)
        self._workers[self._workers.index(worker)] = self._spawn()


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _next_deadline(pool: list[_Worker], limit: float) -> float:
    """Seconds until the earliest busy worker overruns (at most 1 s, to notice start-ups)."""
    now = time.monotonic()
    remaining = [w.started + limit - now for w in pool if w.path is not None]
    return max(0.0, min([1.0, *remaining]))


def _crashed(worker: _Worker) -> ExtractResult:
    worker.process.join(timeout=1)
    code = worker.process.exitcode
    error = WorkerCrashError(
        worker.path or "", f"the worker process died (exit code {code}) while extracting it"
    )
    return _failure(worker.path or "", error, time.monotonic() - worker.started)


def _kill(worker: _Worker) -> None:
    worker.process.kill()
    worker.process.join(timeout=5)
    worker.conn.close()


def _stop(worker: _Worker) -> None:
    """Ask an idle worker to exit; kill a busy (or stubborn) one."""
    if worker.path is None and worker.ready:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
        worker.process.join(timeout=2)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5)
    worker.conn.close()
