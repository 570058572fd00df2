"""What every `ragsys` command shares: the stderr console, typed errors as one line and exit
code 2, and the machine-readable `--json` line. Kept apart from `cli.py` so the command
modules it registers (train, tune, serve, feedback) can import it without a cycle."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True)  # an error line stays one line, whatever the width


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
