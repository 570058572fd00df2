"""What `--max-minutes` keeps back for the work after the stages, so the whole run ends in time.

The stages may spend only what is left once the work that must follow them is paid for:

* the report answers the test questions once per system -- the baseline, the tuned pipeline,
  one ablation per kept stage and the isolated control -- and on a CPU answering dominates
  the run (a 135M generator takes seconds per question);
* the isolated control retrains each kept trained component (retriever, reranker, generator)
  for as long as the joint stage took (`ragsys.tune.isolated`) -- as one of its trainings took
  when it was cross-fitted: k fold runs and the final one share the stage's minutes, and the
  control trains once (counting all of them starved the next stage: a 10-Q run with `--folds 3`
  kept back 48 min for a retriever control and left the generator stage 0 minutes).

Before each stage the reserve is recomputed as if that stage and every later one will be kept
(one more ablation each to answer and, for a trained component, an isolated copy as long as the
stage itself: such a stage gets half of what is left). A stage that spends what it is given
(`BUDGETED`) shares what is free equally with the budgeted stages still to run after it: a
10-Q run with `--folds 3 --max-minutes 60` gave the retriever stage 33 of 59 min and the
generator stage after it 0, so the stage the user listed last never ran. A ranker stage's work
around its trainer (LM supervision, mining, re-embedding the corpus) comes out of its share too
(`ragsys.train.mining.recipe.trainer_minutes`): it used to be paid on top, about 2 min per fold
of the 10-Q retriever stage. With `--folds`, the folds' judging (every non-test question
scored before and after) is set aside before the stage's minutes are shared among its k + 1
trainings (`share`, `judging_s`), and the final training on every question gets at least the
share each was planned, however the folds ran. The cost of one answer
and one search is measured on this machine by the scorer (`Scorer.seconds_per`, first from a
short probe on dev questions), never assumed.

Cross-fitting an answer stage answers every non-test question twice (before and after): on the
10-Q filings 2 x 117 answers, 11 min at 2.8 s, whatever the stage trains. `crossfit_declined`
says when that judging would take more than half the stage's minutes, and the stage is then
judged on the dev split instead (k + 1 trainings squeezed into what the judging leaves would
each be too short to learn anything).

Example:
    >>> cost = ReportCost(test_questions=78, answered=78, seconds_per_answer=6.0,
    ...                   seconds_per_search=0.05)
    >>> round(reserve_s(cost, kept=(), next_stage="generator", isolated=True) / 60, 1)
    31.5
    >>> stage_s(3600.0, 1800.0, "generator", isolated=True)
    900.0
    >>> stage_s(3600.0, 1800.0, "retriever", isolated=False, later=1)  # the generator still to run
    900.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget
from ragsys.tune.context import TuneContext, with_gold, with_reference
from ragsys.tune.scoring import ANSWER, RETRIEVAL
from ragsys.tune.shared import on_main
from ragsys.tune.stages import ANSWER_STAGES, DATA_STAGES
from ragsys.tune.state import StageRecord, TuneState, kept_stages
from ragsys.types import Frozen

TRAINED = frozenset({"retriever", "reranker", "generator"})  # the isolated control retrains these
# stages that spend the minutes they are given (the others take seconds or a fixed number of answers)
BUDGETED = TRAINED | {"preference", "labels"}
JUDGING_SHARE = 0.5  # of a cross-fitted stage's minutes its judging may take (`crossfit_declined`)
ISOLATED_FLOOR_S = 60.0  # `isolated._budgeted` gives every control at least a minute
PROBE = 3  # dev questions answered to time the generator when nothing was measured yet


class ReportCost(Frozen):
    """What one system costs in the report, measured on this machine."""

    test_questions: int = Field(ge=0)  # searched per system (a count; no test item is read)
    answered: int = Field(ge=0)  # of those, answered end to end (`--report-answers`)
    seconds_per_answer: float = Field(ge=0.0)  # 0 when the pipeline has no generator
    seconds_per_search: float = Field(ge=0.0)

    def per_system_s(self) -> float:
        return self.test_questions * self.seconds_per_search + self.answered * self.seconds_per_answer


def systems(kept: Sequence[StageRecord], next_stage: str | None, isolated: bool, later: int = 0) -> int:
    """Systems the report scores: baseline, tuned, one ablation per kept stage (`next_stage` and
    the `later` budgeted stages after it counted as kept), and the isolated control when anything
    was kept."""
    n_kept = len(kept_stages(kept)) + (next_stage is not None) + later
    return 2 + n_kept + (isolated and n_kept > 0)


def reserve_s(
    cost: ReportCost, kept: Sequence[StageRecord], next_stage: str | None, isolated: bool, later: int = 0
) -> float:
    """Seconds the report and the isolated control will need, counting `next_stage` and the
    `later` budgeted stages as kept."""
    control = sum(max(_one_training_s(r), ISOLATED_FLOOR_S) for r in kept_stages(kept) if r.name in TRAINED)
    answering = systems(kept, next_stage, isolated, later) * cost.per_system_s()
    return answering + (control if isolated else 0.0)


def _trainings(folds: int) -> int:
    """How often a stage trains: once, or k fold runs and the final one when cross-fitted."""
    return folds + 1 if folds >= 2 else 1


def _one_training_s(r: StageRecord) -> float:
    """Seconds one training of the stage took: its minutes shared among its trainings."""
    return r.minutes * 60.0 / _trainings(r.decision.folds if r.decision is not None else 0)


def stage_s(
    remaining_s: float, reserve: float, next_stage: str, isolated: bool, folds: int = 0, later: int = 0
) -> float:
    """What `next_stage` may spend: the time left after the reserve -- for a `BUDGETED` stage an
    equal share of it with the `later` budgeted stages still to run -- less the share its
    isolated copy will need when it is a trained component (half; 1 of k + 2 when cross-fitted
    over k folds, since the stage trains k + 1 times and the control once).

        >>> stage_s(3600.0, 600.0, "generator", isolated=True, folds=3)
        2400.0
        >>> stage_s(3600.0, 600.0, "scope", isolated=True, later=2)  # takes seconds: no sharing
        3000.0
    """
    free = max(remaining_s - reserve, 0.0)
    if next_stage in BUDGETED:
        free /= 1 + later
    if not (isolated and next_stage in TRAINED):
        return free
    runs = _trainings(folds)
    return free * runs / (runs + 1)


def stage_budget(
    ctx: TuneContext, state: TuneState, name: str, overall: TimeBudget, test_questions: int
) -> tuple[TimeBudget, str, str | None]:
    """The budget stage `name` runs under, a log line saying what was kept back, and why the
    stage is judged on the dev split although `--folds` was given (`crossfit_declined`, judged
    on the budget cross-fitting would have had), or None. Without `--max-minutes` the stage has
    no limit and cross-fits. Every process gets main's numbers (main measured)."""
    if math.isinf(overall.remaining_s()):
        return overall, "", None
    base, base_index = PipelineConfig.load(Path(state.base_pipeline)), Path(state.base_index)
    _probe(ctx, base, base_index)
    isolated = ctx.settings.isolated
    answered = min(ctx.settings.report_answers or test_questions, test_questions)
    nxt = None if name in DATA_STAGES else name  # a data stage is never judged, so never kept
    later = later_budgeted(ctx.settings.stages, name, state)

    def plan() -> tuple[float, str, str | None]:
        cost = ReportCost(
            test_questions=test_questions, answered=answered if base.generator is not None else 0,
            seconds_per_answer=ctx.scorer.seconds_per(ANSWER) or 0.0,
            seconds_per_search=ctx.scorer.seconds_per(RETRIEVAL) or 0.0,
        )  # fmt: skip
        reserve = reserve_s(cost, state.stages, nxt, isolated, later)
        seconds = stage_s(overall.remaining_s(), reserve, name, isolated, ctx.settings.folds, later)
        declined = _crossfit_declined_for(ctx, name, seconds)
        if declined is not None:  # trains once, as without --folds
            seconds = stage_s(overall.remaining_s(), reserve, name, isolated, 0, later)
        shared = f", shared with {later} later stage{'s' * (later > 1)}" if later and name in BUDGETED else ""
        line = (
            f"stage {name}: {seconds / 60:.1f} of {overall.remaining_s() / 60:.1f} min left{shared}; "
            f"{reserve / 60:.1f} min kept back for the report ({systems(state.stages, nxt, isolated, later)} "
            f"systems x ({cost.answered} answers at {cost.seconds_per_answer:.1f} s + "
            f"{cost.test_questions} searches at {cost.seconds_per_search:.2f} s))"
            + (" and the isolated control's training" if isolated else "")
        )
        return seconds, line, declined

    seconds, line, declined = on_main(ctx.world, plan)
    return TimeBudget(seconds / 60.0), line, declined


def share(
    ctx: TuneContext, runs_left: int, at_least: float | None = None, after_s: float = 0.0
) -> TimeBudget:
    """An equal share of the stage's time left for each of the `runs_left` trainings still to
    come (cross-fitting's fold runs, then the final one), once `after_s` seconds of other work
    still to come are set aside (the folds' judging), and at least `at_least` minutes."""
    left = ctx.minutes_left()
    if left is None:
        return TimeBudget(None)
    return TimeBudget(max((left - after_s / 60.0) / max(runs_left, 1), at_least or 0.0))


def later_budgeted(order: Sequence[str], name: str, state: TuneState) -> int:
    """How many `BUDGETED` stages will run after `name` (those not already done on a resume)."""
    stages = list(order)
    after = stages[stages.index(name) + 1 :] if name in stages else []
    return sum(s in BUDGETED and state.done(s) is None for s in after)


def crossfit_declined(stage_seconds: float, judged: int, seconds_per: float | None, folds: int) -> str | None:
    """Why a stage with `stage_seconds` to spend is judged on the dev split rather than
    cross-fitted (module docstring), or None to cross-fit: judging `judged` questions before and
    after at `seconds_per` each may take at most `JUDGING_SHARE` of its time. Unmeasured or
    unlimited: cross-fit.

        >>> print(crossfit_declined(13.6 * 60, judged=117, seconds_per=2.8, folds=3))
        cross-fitting over 3 folds would spend 10.9 min judging 117 questions twice, over half of its 13.6 min
        >>> crossfit_declined(52.1 * 60, judged=117, seconds_per=2.8, folds=3) is None
        True
    """
    if seconds_per is None or math.isinf(stage_seconds):
        return None
    judging = 2 * judged * seconds_per
    if judging <= JUDGING_SHARE * stage_seconds:
        return None
    return (
        f"cross-fitting over {folds} folds would spend {judging / 60:.1f} min judging {judged} questions "
        f"twice, over half of its {stage_seconds / 60:.1f} min"
    )


def judging_s(ctx: TuneContext, name: str) -> float:
    """Seconds cross-fitting's judging of stage `name` takes: every non-test question it is judged
    on scored before and after, at the scorer's measured cost (0 until measured). Call on main."""
    judged, per = _judged(ctx, name)
    return 0.0 if per is None else 2 * judged * per


def _judged(ctx: TuneContext, name: str) -> tuple[int, float | None]:
    answer = name in ANSWER_STAGES
    judged = len((with_reference if answer else with_gold)([*ctx.train, *ctx.dev]))
    return judged, ctx.scorer.seconds_per(ANSWER if answer else RETRIEVAL)


def _crossfit_declined_for(ctx: TuneContext, name: str, seconds: float) -> str | None:
    """`crossfit_declined` for stage `name` with `seconds` to spend (`stage_budget` calls it on
    main: it reads the scorer's timings). None without `--folds` and for data stages (never judged)."""
    if ctx.settings.folds < 2 or name in DATA_STAGES or math.isinf(seconds):
        return None
    return crossfit_declined(seconds, *_judged(ctx, name), ctx.settings.folds)


def _probe(ctx: TuneContext, config: PipelineConfig, index: Path) -> None:
    """Times a search and an answer on a few dev questions with the untuned pipeline when the
    scorer has measured neither yet (the probe's scores are not used for any decision)."""
    seen = on_main(ctx.world, lambda: (ctx.scorer.seconds_per(RETRIEVAL), ctx.scorer.seconds_per(ANSWER)))
    gold = [it for it in ctx.dev if it.gold_doc_ids][:PROBE]
    if seen[0] is None and gold:
        ctx.scorer.retrieval(config, index, gold)
    answered = [it for it in ctx.dev if it.answer or it.label][:PROBE]
    if seen[1] is None and answered and config.generator is not None:
        ctx.log(f"timing the generator on {len(answered)} dev questions (to plan the report's time)")
        ctx.scorer.answers(config, index, answered)
