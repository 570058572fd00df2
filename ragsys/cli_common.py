"""What every `ragsys` command shares: the stderr console, typed errors as one line and exit
code 2, and the machine-readable `--json` line. Kept apart from `cli.py` so the command
modules it registers (train, tune, serve, feedback) can import it without a cycle."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

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
