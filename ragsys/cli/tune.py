"""`ragsys tune`: the whole stack specialized against one eval set, with a report on test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragsys.cli.console import Bars, err, user_errors
from ragsys.cli.options import EvalSetOpt, FeedbackOpt, FeedbackVersionOpt, IndexOpt, JsonOpt, PipelineOpt

if TYPE_CHECKING:
    from ragsys.tune.state import TuneState

MethodsOpt = Annotated[
    str, typer.Option(help="preference stage: methods run in order (kto: thumbs; clair: revisions)")
]

SftContextsOpt = Annotated[
    str,
    typer.Option(
        help="generator stage: SFT on the retrieved passages (retrieved), or on them with the gold chunks "
        "that state the reference's figures put in (evidence, RAFT-style)"
    ),
]


def tune(
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    out: Annotated[Path, typer.Option("--out", help="tuned pipeline directory (resumes if it holds a run)")],
    pipeline: PipelineOpt = None,
    feedback: FeedbackOpt = None,
    feedback_version: FeedbackVersionOpt = "current",
    preference_methods: MethodsOpt = "kto,clair",
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="budget for the whole run, report included")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    stages: Annotated[str | None, typer.Option(help="comma-separated subset of the stages, in order")] = None,
    alpha: Annotated[float, typer.Option(help="keep a stage only if its dev gain has p below this")] = 0.1,
    dev_answers: Annotated[int, typer.Option(help="dev questions answered to judge generator stages")] = 100,
    folds: Annotated[
        int,
        typer.Option(
            help="judge each stage by cross-fitting over this many folds of all non-test questions "
            "(k + 1 trainings per stage; 0: one dev split)"
        ),
    ] = 0,
    report_answers: Annotated[
        int | None, typer.Option(help="test questions answered per system in the report (default all)")
    ] = None,
    isolated: Annotated[
        bool, typer.Option(help="also tune each component in isolation (the ablation's control)")
    ] = True,
    sft_contexts: SftContextsOpt = "retrieved",
    as_json: JsonOpt = False,
) -> None:
    """Tune retriever, reranker, fusion and generator together on train/dev; report on test."""
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.pipeline import load_pipeline
    from ragsys.progress import no_progress
    from ragsys.train.parallel import current_world
    from ragsys.tune.run import tune as run_tune
    from ragsys.tune.settings import STAGE_ORDER, TuneSettings

    main = current_world().main  # under `accelerate launch`, only the main process reports
    with user_errors(), Bars(err, max_minutes) as bars:
        chosen = tuple(s.strip() for s in stages.split(",")) if stages else STAGE_ORDER
        if sft_contexts not in ("retrieved", "evidence"):
            raise ValueError(f"--sft-contexts {sft_contexts!r}: choose retrieved or evidence")
        unknown = [s for s in chosen if s not in STAGE_ORDER]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGE_ORDER)}")
        settings = TuneSettings(
            stages=tuple(s for s in STAGE_ORDER if s in chosen), alpha=alpha, dev_answers=dev_answers,
            folds=folds, report_answers=report_answers, isolated=isolated, feedback_version=feedback_version,
            preference_methods=tuple(m.strip() for m in preference_methods.split(",") if m.strip()),
            generator=TuneSettings().generator.model_copy(update={"contexts": sft_contexts}),
        )  # fmt: skip
        state = run_tune(
            load_pipeline(pipeline), index_dir, EvalSetReader(eval_set), out, settings=settings,
            feedback=feedback, seed=seed, max_minutes=max_minutes, progress=bars if main else no_progress,
            log=bars.log if main else lambda line: None,
        )  # fmt: skip
    if main:
        _summary(state, out, as_json)


def _summary(state: TuneState, out: Path, as_json: bool) -> None:
    """Each stage's outcome and each system's test metrics, on stderr; the report with --json."""
    for rec in state.stages:
        err.print(f"  {rec.name:<11} {rec.status:<9} {rec.reason}", highlight=False)
    report_file = out / "report.json"
    if not report_file.exists():
        return
    report = json.loads(report_file.read_text(encoding="utf-8"))
    for name, system in report["systems"].items():
        cells = ", ".join(f"{m} {v:.4f}" for m, v in system["metrics"].items())
        err.print(f"  {name:<22} {cells}", highlight=False)
    err.print(f"report: {out / 'report.html'}; tuned pipeline: {out} (with --index {state.current_index})")
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
