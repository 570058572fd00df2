"""`ragsys feedback ...`: import, export and summarize the feedback store.

Tables and per-line errors go to stderr, so stdout carries only data: the JSONL of
`export`, or with `--json` one JSON object as the last line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragsys.cli.console import emit_json, err, user_errors
from ragsys.cli.options import JsonOpt
from ragsys.feedback.jsonl import export_feedback, import_feedback
from ragsys.feedback.records import FeedbackStats
from ragsys.feedback.store import FeedbackStore

feedback_app = typer.Typer(
    no_args_is_help=True, help="Collect and inspect user feedback (thumbs, revisions)."
)

DbOpt = Annotated[Path, typer.Option("--feedback", help="feedback db (SQLite)")]


@feedback_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL, one feedback record per line (as `export` writes)")],
    db: DbOpt,
    as_json: JsonOpt = False,
) -> None:
    """Add records from a JSONL file; bad lines are reported and skipped, stored ids are duplicates."""
    # exit code 2 only when the file had errors and nothing was imported: partial success is success
    with user_errors(), FeedbackStore.open(db) as store:
        result = import_feedback(store, file)
    for e in result.errors:
        err.print(f"{file}:{e.line}: {e.error}", markup=False, highlight=False)
    err.print(f"imported {result.imported}, duplicates {result.duplicates}, bad lines {len(result.errors)}",
              highlight=False)  # fmt: skip
    if as_json:
        emit_json(result.model_dump(mode="json"))
    if result.errors and result.imported == 0:
        raise typer.Exit(2)


@feedback_app.command()
def export(db: DbOpt) -> None:
    """Write every record as JSONL to stdout, in the order they were added (`import` reads it back)."""
    with user_errors(), FeedbackStore.open(db, readonly=True) as store:
        n = export_feedback(store, sys.stdout)
    sys.stdout.flush()
    err.print(f"exported {n} records", highlight=False)


@feedback_app.command()
def stats(db: DbOpt, as_json: JsonOpt = False) -> None:
    """Counts by rating, revisions and comments, overall and per pipeline version."""
    with user_errors(), FeedbackStore.open(db, readonly=True) as store:
        summary = store.stats()
    err.print(_stats_table(summary))
    if as_json:
        emit_json(summary.model_dump())


def _stats_table(s: FeedbackStats) -> Table:
    t = Table(title=f"feedback: {s.total} records, {s.comments} with comments")
    for col in ("pipeline version", "up", "down", "revisions"):
        t.add_column(col, justify="left" if col == "pipeline version" else "right")
    for version, c in s.by_pipeline_version.items():
        t.add_row(version, str(c["up"]), str(c["down"]), str(c["revisions"]))
    t.add_section()
    t.add_row("[bold]all[/bold]", str(s.up), str(s.down), str(s.revisions))
    return t
