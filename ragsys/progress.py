"""How long work reports progress: one shape for every phase, whoever shows it.

`Progress` is called as `progress(phase, done, total)` (total 0 when unknown); the CLI shows
it as one bar per phase (`ragsys.cli.console.Bars`), tests pass nothing. Indexing reports
through the `Reporter` shape (stage / advance / log), which `PhaseReporter` maps onto a
`Progress`, so re-embedding a corpus inside `ragsys tune` shows up as its phases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def no_progress(phase: str, done: int, total: int) -> None:
    """A `Progress` that shows nothing."""


def counter(progress: Progress, phase: str, total: int) -> Callable[[int], None]:
    """Increments (`tick(n)`) turned into `progress(phase, done, total)` calls."""
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress(phase, done, total)

    return tick


class Reporter(Protocol):
    def stage(self, name: str, total: int) -> None: ...
    def advance(self, name: str, n: int = 1) -> None: ...
    def log(self, message: str) -> None: ...


class NullReporter:
    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, name: str, n: int = 1) -> None:
        pass

    def log(self, message: str) -> None:
        pass


class PhaseReporter:
    """A `Reporter` over a `Progress`: each indexing stage becomes the phase `prefix: stage`."""

    def __init__(self, progress: Progress, prefix: str, log: Callable[[str], None]) -> None:
        self._progress, self._prefix, self._log = progress, prefix, log
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def stage(self, name: str, total: int) -> None:
        self._done[name], self._total[name] = 0, total
        self._progress(f"{self._prefix}: {name}", 0, total)

    def advance(self, name: str, n: int = 1) -> None:
        self._done[name] = self._done.get(name, 0) + n
        self._progress(f"{self._prefix}: {name}", self._done[name], self._total.get(name, 0))

    def log(self, message: str) -> None:
        self._log(message)
