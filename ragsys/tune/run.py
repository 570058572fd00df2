"""Driving the stages: measure dev, run a stage, keep it only if dev improves, checkpoint.

With `TuneSettings.folds` >= 2 a stage is judged by cross-fitting instead of one dev split
(`ragsys.tune.crossfit`): it is trained once per fold on the other folds, each fold's
questions are scored by the stage that never saw them, the paired test runs over every
non-test question, and a kept stage is trained once more on all of them. That costs k + 1
trainings per judged stage; each fold run gets an equal share of the time left.

`tune()` is resumable: the state file records the split, every finished stage and the dev
scores already measured, so a re-run after an interruption skips straight to the first
unfinished stage (whose trainer resumes from its own checkpoints).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from ragsys.eval.answers import LABELS
from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.split import TEST_SPLIT, non_test_items, split_train_dev
from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget, seed_everything
from ragsys.train.parallel import current_world
from ragsys.tune.context import Proposal, Stage, TuneContext, with_gold, with_reference
from ragsys.tune.crossfit import Fold, fold_ids, folds_of
from ragsys.tune.decide import Decision, closed_set_gold, decide, decide_labels
from ragsys.tune.isolated import build_isolated
from ragsys.tune.report import final_report
from ragsys.tune.reserve import judging_s, share, stage_budget
from ragsys.tune.scoring import ANSWER, Scorer, Scores
from ragsys.tune.settings import TuneSettings, for_pipeline
from ragsys.tune.shared import on_main, save_config, saved
from ragsys.tune.stages import DATA_STAGES, STAGES, unjudgeable
from ragsys.tune.state import StageRecord, TuneState, load_state, save_state, score_key

BASE = "base"  # the folder under `out` holding the starting pipeline


def start_state(
    out: Path,
    reader: EvalSetReader,
    config: PipelineConfig,
    index_dir: Path,
    settings: TuneSettings,
    seed: int,
) -> tuple[TuneState, list[EvalItem]]:
    """The saved state when resuming (same eval set and seed), else a fresh split and state."""
    items = non_test_items(reader)
    state = load_state(out)
    if state is not None:
        if state.seed != seed or state.eval_set != str(reader.path.resolve()):
            raise ValueError(f"{out} holds a tune run with another eval set or seed; use a new --out")
        return state, items
    split = split_train_dev(items, settings.dev_fraction, seed, settings.max_dev)
    folds = fold_ids(items, settings.folds, seed) if settings.folds >= 2 else ()
    base_dir = out / BASE
    config.save(base_dir)
    state = TuneState(
        seed=seed,
        eval_set=str(reader.path.resolve()),
        train_ids=tuple(it.id for it in split.train),
        dev_ids=tuple(it.id for it in split.dev),
        base_pipeline=str(base_dir),
        base_index=str(index_dir.resolve()),
        current_pipeline=str(base_dir),
        current_index=str(index_dir.resolve()),
        folds=folds,
    )
    save_state(out, state)
    return state, items


def dev_for(metric: str, dev: Sequence[EvalItem], settings: TuneSettings) -> list[EvalItem]:
    if metric == ANSWER:
        return with_reference(dev)[: settings.dev_answers]
    return with_gold(dev)


def measured(
    state: TuneState,
    scorer: Scorer,
    pipeline_dir: str,
    index_dir: str,
    metric: str,
    dev: Sequence[EvalItem],
    settings: TuneSettings,
) -> tuple[TuneState, Scores, dict[str, str]]:
    """Dev scores (and chosen labels) of a candidate, measured once and kept in the state."""
    return measured_on(state, scorer, pipeline_dir, index_dir, metric, dev_for(metric, dev, settings))


def measured_on(
    state: TuneState,
    scorer: Scorer,
    pipeline_dir: str,
    index_dir: str,
    metric: str,
    items: Sequence[EvalItem],
) -> tuple[TuneState, Scores, dict[str, str]]:
    """`measured` on exactly `items`: one set per run (the dev split, or every fold's judged
    questions when cross-fitting), so a pipeline's cached scores always cover the same ones."""
    key = score_key(pipeline_dir, metric)
    if key in state.scores:
        return state, state.scores[key], state.labels.get(key, {})
    config = PipelineConfig.load(Path(pipeline_dir))
    scores, labels = scorer.measure(config, Path(index_dir), items, metric)
    update = {"scores": {**state.scores, key: scores}, "labels": {**state.labels, key: labels}}
    return state.model_copy(update=update), scores, labels


def judge(
    before: tuple[Scores, dict[str, str]],
    after: tuple[Scores, dict[str, str]],
    dev: Sequence[EvalItem],
    alpha: float,
    seed: int,
) -> Decision:
    """On label macro-F1 when every scored dev question has a closed-set label and both
    candidates chose one for each; otherwise on the mean per-question score."""
    gold = closed_set_gold([it for it in dev if it.id in before[0]], before[1], after[1], labels=LABELS)
    if gold is not None:
        return decide_labels(before[1], after[1], gold, LABELS, alpha, seed)
    return decide(before[0], after[0], alpha, seed=seed)


def tune(
    config: PipelineConfig,
    index_dir: Path,
    reader: EvalSetReader,
    out: Path,
    *,
    settings: TuneSettings | None = None,
    feedback: Path | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    progress: Callable[[str, int, int], None] = lambda phase, done, total: None,
    log: Callable[[str], None] = print,
    stages: dict[str, Stage] | None = None,
    report: bool = True,
    scorer: Scorer | None = None,
) -> TuneState:
    """Runs every stage in `settings.stages` that has not run yet, then (with `report`) builds the
    isolated control and writes the test report; returns the final state (`ragsys.tune.shared`)."""
    t0, world = time.monotonic(), current_world()
    settings = for_pipeline(settings or TuneSettings(), config)  # feedback of the version it starts from
    seed_everything(seed)
    state, items = on_main(world, lambda: start_state(out, reader, config, index_dir, settings, seed))
    by_id = {it.id: it for it in items}
    scorer = scorer or Scorer(settings.answer_k, progress, world)
    # the whole run ends within max_minutes: each stage gets what the report leaves (tune.reserve)
    overall, tests = TimeBudget(max_minutes), on_main(world, lambda: reader.split_sizes().get(TEST_SPLIT, 0))
    ctx = TuneContext(
        settings=settings, seed=seed, train=[by_id[i] for i in state.train_ids],
        dev=[by_id[i] for i in state.dev_ids], feedback=feedback, scorer=scorer, budget=overall,
        progress=progress, log=log, world=world, questions=items,
    )  # fmt: skip
    if world.size > 1:
        log(f"data-parallel over {world.size} processes (accelerate launch); the main one writes")
    log(f"train {len(ctx.train)} questions, dev {len(ctx.dev)} (seed {seed}); the test split is not read")
    if state.folds:
        k = len(state.folds)
        log(f"stages are judged by cross-fitting over {k} folds of all {len(items)} non-test questions")
    table = stages or STAGES
    try:
        for number, name in enumerate(settings.stages, start=1):
            done = state.done(name)
            if done is not None:
                log(f"stage {name}: already {done.status} (resumed)")
                _restore(ctx, done)
                continue
            ctx.budget, line, declined = stage_budget(ctx, state, name, overall, tests)
            if line:
                log(line)
            stage_dir = out / "stages" / f"{number:02d}-{name}"
            state = _run_stage(ctx, state, name, table[name], stage_dir, scorer, declined)
            state = on_main(world, partial(saved, out, state))  # every process goes on with main's
        state = state.model_copy(update={"minutes": state.minutes + (time.monotonic() - t0) / 60})
        state = on_main(world, lambda: saved(out, state, PipelineConfig.load(Path(state.current_pipeline))))
        if report:
            isolated = build_isolated(ctx, state, out / "isolated") if settings.isolated else None
            final_report(state, reader, out, scorer, isolated, settings.report_answers, log)
    finally:
        scorer.close()
    return state


def _run_stage(
    ctx: TuneContext, state: TuneState, name: str, stage: Stage, stage_dir: Path, scorer: Scorer,
    declined: str | None,  # reserve.stage_budget: why a --folds run judges it on dev instead
) -> TuneState:  # fmt: skip
    t0 = time.monotonic()
    if ctx.world.any(ctx.budget.expired):  # the same on every process: all skip, or none
        reason = "the --max-minutes budget ran out (what is left is kept for the report)"
        return _record(state, StageRecord(name=name, status="skipped", reason=reason))
    unjudged = unjudgeable(name, [*ctx.train, *ctx.dev] if state.folds and declined is None else ctx.dev)
    if unjudged is not None:
        ctx.log(f"stage {name}: skipped ({unjudged})")
        return _record(state, StageRecord(name=name, status="skipped", reason=unjudged))
    current = PipelineConfig.load(Path(state.current_pipeline))
    if state.folds and name not in DATA_STAGES and declined is None:
        return _crossfit(ctx, state, name, stage, stage_dir, scorer, t0)
    if declined is not None:
        ctx.log(f"stage {name}: judged on the {len(ctx.dev)} dev questions, not cross-fitted ({declined})")
    proposal = stage(ctx, current, Path(state.current_index), stage_dir)
    if declined is not None and not isinstance(proposal, str):
        proposal = dataclasses.replace(proposal, extra={**proposal.extra, "not_cross_fitted": declined})
    minutes = round((time.monotonic() - t0) / 60, 2)
    if isinstance(proposal, str):
        ctx.log(f"stage {name}: skipped ({proposal})")
        return _record(state, StageRecord(name=name, status="skipped", reason=proposal, minutes=minutes))
    save_config(ctx.world, proposal.config, stage_dir)
    return _judge(ctx, state, name, proposal, stage_dir, scorer, t0)


def _judge(
    ctx: TuneContext,
    state: TuneState,
    name: str,
    proposal: Proposal,
    stage_dir: Path,
    scorer: Scorer,
    t0: float,
) -> TuneState:
    def record(status: str, reason: str, decision: Decision | None = None) -> StageRecord:
        return StageRecord.model_validate(
            {"name": name, "status": status, "reason": reason, "metric": proposal.metric,
             "decision": decision, "minutes": _since(t0), "pipeline_dir": str(stage_dir),
             "index_dir": str(proposal.index_dir), "extra": proposal.extra}
        )  # fmt: skip

    if proposal.metric is None:
        ctx.log(f"stage {name}: done (data for the next stages)")
        return _record(state, record("kept", "data stage"))
    if proposal.rejected is not None:
        ctx.log(f"stage {name}: reverted ({proposal.rejected})")
        return _record(state, record("reverted", proposal.rejected))
    metric, dev = proposal.metric, ctx.dev
    state, before, before_labels = measured(
        state, scorer, state.current_pipeline, state.current_index, metric, dev, ctx.settings
    )
    state, after, after_labels = measured(
        state, scorer, str(stage_dir), str(proposal.index_dir), metric, dev, ctx.settings
    )
    decision = judge((before, before_labels), (after, after_labels), dev, ctx.settings.alpha, ctx.seed)
    ctx.log(f"stage {name}: {'kept' if decision.kept else 'reverted'} -- {decision.reason}")
    state = _record(state, record("kept" if decision.kept else "reverted", decision.reason, decision))
    if decision.kept:
        update = {"current_pipeline": str(stage_dir), "current_index": str(proposal.index_dir)}
        state = state.model_copy(update=update)
    return state


FoldRun = tuple[Fold, Proposal, Path]  # a fold, what the stage trained on the others proposed, where


def _crossfit(
    ctx: TuneContext, state: TuneState, name: str, stage: Stage, stage_dir: Path, scorer: Scorer, t0: float
) -> TuneState:
    """Judge `stage` by cross-fitting (module docstring); train it on everything if kept."""
    items, settings = [*ctx.train, *ctx.dev], ctx.settings
    folds = folds_of(items, _assignment(state, items), settings.dev_fraction, ctx.seed, settings.max_dev)
    # the folds' judging comes after them, inside the stage's time; `planned`: each training's share
    judging = 0.0 if ctx.minutes_left() is None else on_main(ctx.world, lambda: judging_s(ctx, name))
    planned = share(ctx, len(folds) + 1, after_s=judging).remaining_s() / 60
    runs = _fold_runs(ctx, state, name, stage, stage_dir, folds, judging)
    if isinstance(runs, str):
        ctx.log(f"stage {name}: skipped ({runs})")
        return _record(state, StageRecord(name=name, status="skipped", reason=runs, minutes=_since(t0)))
    metric = runs[0][1].metric
    assert metric is not None
    judged = {f.number: dev_for(metric, f.held_out, ctx.settings) for f in folds}
    state, decision = _crossfit_decision(ctx, state, scorer, runs, judged, metric)
    per_fold = [
        {
            "fold": f.number,
            "trained_on": len(f.train),
            "judged": len(judged[f.number]),
            "rejected": p.rejected,
        }
        for f, p, _ in runs
    ]

    def record(status: str, reason: str, final: Proposal | None) -> StageRecord:
        return StageRecord.model_validate(
            {"name": name, "status": status, "reason": reason, "metric": metric, "decision": decision,
             "minutes": _since(t0), "pipeline_dir": str(stage_dir) if final else str(runs[0][2]),
             "index_dir": str(final.index_dir if final else runs[0][1].index_dir),
             "extra": {"folds": per_fold, **(final.extra if final else {})}}
        )  # fmt: skip

    if not decision.kept:
        ctx.log(f"stage {name}: reverted -- {decision.reason}")
        return _record(state, record("reverted", decision.reason, None))
    ctx.log(f"stage {name}: gain shown ({decision.reason}); training it on all {len(items)} questions")
    current, index = PipelineConfig.load(Path(state.current_pipeline)), Path(state.current_index)
    # what ships trains at least as long as each judged fold run was planned to, if the folds overran
    everything = dataclasses.replace(ctx, train=items, budget=share(ctx, 1, planned))
    final = stage(everything, current, index, stage_dir)
    if isinstance(final, str) or final.rejected is not None:
        why = final if isinstance(final, str) else final.rejected
        reason = f"{decision.reason}; but trained on all questions the stage declined ({why}); reverted"
        ctx.log(f"stage {name}: reverted -- {reason}")
        return _record(state, record("reverted", reason, None))
    save_config(ctx.world, final.config, stage_dir)
    ctx.log(f"stage {name}: kept -- {decision.reason}")
    state = _record(state, record("kept", decision.reason, final))
    return state.model_copy(
        update={"current_pipeline": str(stage_dir), "current_index": str(final.index_dir)}
    )


def _fold_runs(
    ctx: TuneContext, state: TuneState, name: str, stage: Stage, stage_dir: Path, folds: Sequence[Fold],
    judging: float,
) -> list[FoldRun] | str:  # fmt: skip
    """The stage trained once per fold on the other folds (each run an equal share of the time
    left once the judging is set aside, the final run on everything included); a reason instead
    when a fold's run skips."""
    current, index = PipelineConfig.load(Path(state.current_pipeline)), Path(state.current_index)
    runs: list[FoldRun] = []
    for n, fold in enumerate(folds):
        fold_ctx = dataclasses.replace(
            ctx, train=fold.train, dev=fold.dev, budget=share(ctx, len(folds) + 1 - n, after_s=judging)
        )
        ctx.log(f"stage {name}: fold {fold.number}/{len(folds)}, training on {len(fold.train)} questions")
        fold_dir = stage_dir / f"fold-{fold.number}"
        proposal = stage(fold_ctx, current, index, fold_dir)
        if isinstance(proposal, str):
            return f"fold {fold.number}: {proposal}"
        if proposal.metric is None:
            raise ValueError(
                f"stage {name} returned a data proposal; list it in ragsys.tune.stages.DATA_STAGES"
            )
        save_config(ctx.world, proposal.config, fold_dir)
        runs.append((fold, proposal, fold_dir))
    return runs


def _crossfit_decision(
    ctx: TuneContext,
    state: TuneState,
    scorer: Scorer,
    runs: Sequence[FoldRun],
    judged: dict[int, list[EvalItem]],
    metric: str,
) -> tuple[TuneState, Decision]:
    """Every judged question scored before the stage and by the fold run that never trained on
    it (a fold whose run declined keeps the pipeline as it was), then the paired test."""
    every = [it for f, _, _ in runs for it in judged[f.number]]
    state, before, before_labels = measured_on(
        state, scorer, state.current_pipeline, state.current_index, metric, every
    )
    after: Scores = {}
    after_labels: dict[str, str] = {}
    for fold, proposal, fold_dir in runs:
        ids = {it.id for it in judged[fold.number]}
        if proposal.rejected is not None:
            scores, labels = before, before_labels
        else:
            state, scores, labels = measured_on(
                state, scorer, str(fold_dir), str(proposal.index_dir), metric, judged[fold.number]
            )
        after.update({q: v for q, v in scores.items() if q in ids})
        after_labels.update({q: v for q, v in labels.items() if q in ids})
    decision = judge((before, before_labels), (after, after_labels), every, ctx.settings.alpha, ctx.seed)
    k = len(runs)
    return state, decision.model_copy(
        update={"folds": k, "reason": f"cross-fitted over {k} folds: {decision.reason}"}
    )


def _assignment(state: TuneState, items: Sequence[EvalItem]) -> tuple[tuple[str, ...], ...]:
    known = {it.id for it in items}
    if {q for fold in state.folds for q in fold} != known:
        raise ValueError("the saved folds do not cover this run's non-test questions; use a new --out")
    return state.folds


def _restore(ctx: TuneContext, rec: StageRecord) -> None:
    """Data a finished stage left for later ones (synthetic queries) is reloaded on resume."""
    if rec.name != "synthetic" or rec.pipeline_dir is None or rec.index_dir is None:
        return
    pairs = Path(rec.pipeline_dir) / "pairs.jsonl"
    if pairs.exists():
        from ragsys.train.mining.synthetic import load_pairs

        ctx.synthetic = list(load_pairs(pairs, ctx.scorer.index(Path(rec.index_dir))))


def _record(state: TuneState, rec: StageRecord) -> TuneState:
    return state.model_copy(update={"stages": (*state.stages, rec)})


def _since(t0: float) -> float:
    return round((time.monotonic() - t0) / 60, 2)
