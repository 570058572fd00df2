"""`ragsys tune`: the whole stack specialized against one eval set, with a report on test."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ragsys.cli_common import LineThrottle, err


class TuneProgress:
    """One bar per phase (mining, training, scoring...) and one for the overall time budget;
    when stderr is not a terminal (a log file), one line a minute per phase instead, with
    the minutes spent, so a long run can be followed with `tail`."""

    def __init__(self, progress: Progress, max_minutes: float | None, lines: bool = False) -> None:
        self._progress, self._tasks = progress, {}  # type: ignore[var-annotated]
        self._t0, self._max = time.monotonic(), max_minutes
        self._lines = LineThrottle() if lines else None
        self._budget: TaskID | None = None
        if max_minutes is not None:
            self._budget = progress.add_task("budget (minutes)", total=max_minutes)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self._lines is not None and self._lines.due(phase, done, total):
            budget = f" of {self._max:g}" if self._max is not None else ""
            minutes = (time.monotonic() - self._t0) / 60
            line = f"{phase}: {done}/{total or '?'} ({time.strftime('%H:%M:%S')}, {minutes:.1f}{budget} min)"
            self._progress.console.print(line, highlight=False)
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._progress.add_task(phase, total=total or None)
        self._progress.update(task, completed=done, total=total or None)
        if self._budget is not None:
            self._progress.update(
                self._budget, completed=min((time.monotonic() - self._t0) / 60, self._max or 0)
            )


def tune(
    index_dir: Annotated[Path, typer.Option("--index", help="index the pipeline searches")],
    eval_set: Annotated[
        Path, typer.Option("--eval-set", help="eval set JSONL; its test split is only reported")
    ],
    out: Annotated[Path, typer.Option("--out", help="tuned pipeline directory (resumes if it holds a run)")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="starting pipeline")] = None,
    feedback: Annotated[
        Path | None, typer.Option("--feedback", help="feedback store (thumbs, revisions)")
    ] = None,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes", help="overall time budget")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    stages: Annotated[str | None, typer.Option(help="comma-separated subset of the stages, in order")] = None,
    alpha: Annotated[float, typer.Option(help="keep a stage only if its dev gain has p below this")] = 0.1,
    dev_answers: Annotated[int, typer.Option(help="dev questions answered to judge generator stages")] = 100,
    report_answers: Annotated[
        int | None, typer.Option(help="test questions answered per system in the report (default all)")
    ] = None,
    isolated: Annotated[
        bool, typer.Option(help="also tune each component in isolation (the ablation's control)")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the report JSON as the last line")] = False,
) -> None:
    """Tune retriever, reranker, fusion and generator together on train/dev; report on test."""
    from ragsys.cli_common import user_errors
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.pipeline import load_pipeline
    from ragsys.tune.run import tune as run_tune
    from ragsys.tune.stages import STAGE_ORDER, TuneSettings

    with user_errors():
        chosen = tuple(s.strip() for s in stages.split(",")) if stages else STAGE_ORDER
        unknown = [s for s in chosen if s not in STAGE_ORDER]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGE_ORDER)}")
        settings = TuneSettings(
            stages=tuple(s for s in STAGE_ORDER if s in chosen),
            alpha=alpha,  # type: ignore[misc]
            dev_answers=dev_answers,
            report_answers=report_answers,
            isolated=isolated,
        )
        config = load_pipeline(pipeline)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
        ) as progress:
            state = run_tune(
                config,
                index_dir,
                EvalSetReader(eval_set),
                out,
                settings=settings,
                feedback=feedback,
                seed=seed,
                max_minutes=max_minutes,
                progress=TuneProgress(progress, max_minutes, lines=not err.is_terminal),
                log=lambda m: progress.console.print(m, highlight=False),
            )
    for rec in state.stages:
        err.print(f"  {rec.name:<11} {rec.status:<9} {rec.reason}", highlight=False)
    report_file = out / "report.json"
    if report_file.exists():
        report = json.loads(report_file.read_text(encoding="utf-8"))
        for name, system in report["systems"].items():
            cells = ", ".join(f"{m} {v:.4f}" for m, v in system["metrics"].items())
            err.print(f"  {name:<22} {cells}", highlight=False)
        err.print(
            f"report: {out / 'report.html'}; tuned pipeline: {out} (with --index {state.current_index})"
        )
        if as_json:
            sys.stdout.write(json.dumps(report) + "\n")
