"""What every `ragsys` command shares: the consoles, the progress bars, typed errors as one line
and exit code 2, and the machine-readable `--json` line.

Progress and tables go to stderr; with `--json` the machine-readable result is the last line
of stdout. `Bars` is the one progress display: a rich bar per phase on a terminal, and when
stderr is a log file one line per phase a minute (and at its end), so a long run can be
followed with `tail`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error line stays one line, whatever the width


class LineThrottle:
    """For progress written to a log file instead of a terminal: a phase's line is due at most
    once a minute, and always when the phase completes, so a long run can be followed with
    `tail` without flooding it."""

    def __init__(self, every_s: float = 60.0) -> None:
        self._every = every_s
        self._last: dict[str, float] = {}

    def due(self, phase: str, done: int, total: int) -> bool:
        now = time.monotonic()
        if now - self._last.get(phase, 0.0) >= self._every or done == total:
            self._last[phase] = now
            return True
        return False


class Bars:
    """Progress of every phase of a command: `bars(phase, done, total)` (a `ragsys.progress.
    Progress`), and `stage` / `advance` / `log` for indexing (a `ragsys.progress.Reporter`).

    With `max_minutes`, a budget bar shows the minutes spent, and log lines say them too.
    """

    def __init__(self, console: Console = err, max_minutes: float | None = None) -> None:
        self._console, self._max = console, max_minutes
        self._lines = None if console.is_terminal else LineThrottle()
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=self._lines is not None,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}
        self._t0 = time.monotonic()
        self._budget = self._progress.add_task("budget (minutes)", total=max_minutes) if max_minutes else None

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, phase: str, done: int, total: int) -> None:
        self._done[phase], self._total[phase] = done, total
        minutes = (time.monotonic() - self._t0) / 60
        if self._lines is not None and self._lines.due(phase, done, total):
            budget = f" of {self._max:g}" if self._max is not None else ""
            when = f"{time.strftime('%H:%M:%S')}, {minutes:.1f}{budget} min"
            self._console.print(f"{phase}: {done}/{total or '?'} ({when})", highlight=False)
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total or None)
        self._progress.update(self._tasks[phase], completed=done, total=total or None)
        if self._budget is not None:
            self._progress.update(self._budget, completed=min(minutes, self._max or 0))

    def stage(self, name: str, total: int) -> None:
        self(name, 0, total)

    def advance(self, name: str, n: int = 1) -> None:
        self(name, self._done.get(name, 0) + n, self._total.get(name, 0))

    def log(self, message: str) -> None:
        self._console.print(message, highlight=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Typed errors become one clear line and exit code 2, not a traceback."""
    from ragsys.extract.errors import ExtractionError
    from ragsys.index.errors import IndexError_
    from ragsys.models import ModelLoadError
    from ragsys.pipeline import PipelineError

    try:
        yield
    except (IndexError_, PipelineError, ExtractionError, ModelLoadError, OSError, ValueError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from e


def emit_json(obj: object) -> None:
    """One JSON object as the last line of stdout (paths and other objects as strings)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
