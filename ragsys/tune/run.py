"""Driving the stages: measure dev, run a stage, keep it only if dev improves, checkpoint.

`tune()` is resumable: the state file records the split, every finished stage and the dev
scores already measured, so a re-run after an interruption skips straight to the first
unfinished stage (whose trainer resumes from its own checkpoints).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ragsys.eval.answers import LABELS
from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.split import non_test_items, split_train_dev
from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget, seed_everything
from ragsys.tune.context import Proposal, Stage, TuneContext, with_gold, with_reference
from ragsys.tune.decide import Decision, closed_set_gold, decide, decide_labels
from ragsys.tune.report import System, final_report
from ragsys.tune.scoring import ANSWER, Scorer, Scores
from ragsys.tune.settings import TuneSettings
from ragsys.tune.stages import STAGES
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
    key = score_key(pipeline_dir, metric)
    if key in state.scores:
        return state, state.scores[key], state.labels.get(key, {})
    config = PipelineConfig.load(Path(pipeline_dir))
    scores, labels = scorer.measure(config, Path(index_dir), dev_for(metric, dev, settings), metric)
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
    """Runs every stage in `settings.stages` that has not run yet, then (with `report`) builds
    the isolated control and writes the test report; returns the final state."""
    t0 = time.monotonic()
    settings = settings or TuneSettings()
    seed_everything(seed)
    state, items = start_state(out, reader, config, index_dir, settings, seed)
    by_id = {it.id: it for it in items}
    scorer = scorer or Scorer(settings.answer_k, progress)
    ctx = TuneContext(
        settings=settings,
        seed=seed,
        train=[by_id[i] for i in state.train_ids],
        dev=[by_id[i] for i in state.dev_ids],
        feedback=feedback,
        scorer=scorer,
        budget=TimeBudget(max_minutes),
        progress=progress,
        log=log,
    )
    log(f"train {len(ctx.train)} questions, dev {len(ctx.dev)} (seed {seed}); the test split is not read")
    table = stages or STAGES
    try:
        for number, name in enumerate(settings.stages, start=1):
            done = state.done(name)
            if done is not None:
                log(f"stage {name}: already {done.status} (resumed)")
                _restore(ctx, done)
                continue
            state = _run_stage(ctx, state, name, table[name], out / "stages" / f"{number:02d}-{name}", scorer)
            save_state(out, state)
        state = state.model_copy(update={"minutes": state.minutes + (time.monotonic() - t0) / 60})
        PipelineConfig.load(Path(state.current_pipeline)).save(out)
        save_state(out, state)
        if report:
            isolated = _isolated(ctx, state, out) if settings.isolated else None
            final_report(state, reader, out, scorer, isolated, settings.report_answers, log)
    finally:
        scorer.close()
    return state


def _isolated(ctx: TuneContext, state: TuneState, out: Path) -> System | None:
    """The isolated control, built once: a re-run after an interruption reuses what its
    trainers checkpointed under `out/isolated/`."""
    from ragsys.tune.isolated import build_isolated

    ctx.log("building the isolated control (each component tuned alone on gold data)")
    return build_isolated(ctx, state, out / "isolated")


def _run_stage(
    ctx: TuneContext, state: TuneState, name: str, stage: Stage, stage_dir: Path, scorer: Scorer
) -> TuneState:
    t0 = time.monotonic()
    if ctx.budget.expired:
        return _record(
            state, StageRecord(name=name, status="skipped", reason="the --max-minutes budget ran out")
        )
    current = PipelineConfig.load(Path(state.current_pipeline))
    proposal = stage(ctx, current, Path(state.current_index), stage_dir)
    minutes = round((time.monotonic() - t0) / 60, 2)
    if isinstance(proposal, str):
        ctx.log(f"stage {name}: skipped ({proposal})")
        return _record(state, StageRecord(name=name, status="skipped", reason=proposal, minutes=minutes))
    stage_dir.mkdir(parents=True, exist_ok=True)
    proposal.config.save(stage_dir)
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
