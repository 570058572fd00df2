"""`--max-minutes` bounds the whole tune run: each stage gets what the report and the isolated
control leave, by the cost the scorer measured (tune.reserve)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.generate.config import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.reserve import ReportCost, reserve_s, stage_s, systems
from ragsys.tune.run import tune
from ragsys.tune.scoring import ANSWER, RETRIEVAL
from ragsys.tune.settings import TuneSettings
from ragsys.tune.state import StageRecord
from tests.fixtures.tune import FakeScorer, tune_setup

COST = ReportCost(test_questions=10, answered=10, seconds_per_answer=6.0, seconds_per_search=0.1)


def _kept(name: str, minutes: float) -> StageRecord:
    return StageRecord(name=name, status="kept", reason="", metric="answer", minutes=minutes)


def test_the_reserve_counts_every_system_and_the_isolated_controls_training() -> None:
    per_system = 10 * 0.1 + 10 * 6.0
    # nothing kept yet: baseline, tuned, the next stage's ablation, the control
    assert systems((), "generator", isolated=True) == 4
    assert reserve_s(COST, (), "generator", isolated=True) == pytest.approx(4 * per_system)
    assert reserve_s(COST, (), "generator", isolated=False) == pytest.approx(3 * per_system)
    kept = (
        _kept("generator", 12.0),
        _kept("scope", 0.1),  # not retrained by the control
        StageRecord(name="synthetic", status="kept", reason="data stage"),  # no ablation row
        StageRecord(name="retriever", status="reverted", reason="", metric="ndcg@10", minutes=30.0),
    )
    assert systems(kept, "preference", isolated=True) == 6
    assert reserve_s(COST, kept, "preference", isolated=True) == pytest.approx(6 * per_system + 12 * 60)
    assert reserve_s(COST, kept, None, isolated=True) == pytest.approx(5 * per_system + 12 * 60)


def test_a_trained_stage_gets_half_of_what_is_left_when_its_control_trains_as_long() -> None:
    assert stage_s(3600.0, 600.0, "generator", isolated=True) == 1500.0
    assert stage_s(3600.0, 600.0, "generator", isolated=False) == 3000.0
    assert stage_s(3600.0, 600.0, "scope", isolated=True) == 3000.0
    assert stage_s(300.0, 600.0, "scope", isolated=True) == 0.0
    # cross-fitted over 3 folds the stage trains 4 times and its control once: 4/5 of what is free
    assert stage_s(3600.0, 600.0, "generator", isolated=True, folds=3) == 2400.0


def test_a_cross_fitted_stages_control_is_reserved_for_one_training_not_all_of_its_folds() -> None:
    """A 10-Q run with --folds 3 kept back 48 min for the retriever's control (the stage's whole
    48 min: 3 fold runs, the final run and the judging) and left the generator stage nothing."""
    from ragsys.tune.decide import Decision

    decision = Decision(kept=True, before=0.5, after=0.6, delta=0.1, p_value=0.01, n=117, reason="", folds=3)
    crossfit = StageRecord(name="retriever", status="kept", reason="", metric="ndcg@10", minutes=48.0,
                           decision=decision)  # fmt: skip
    answering = reserve_s(COST, (crossfit,), None, isolated=False)
    assert reserve_s(COST, (crossfit,), None, isolated=True) == pytest.approx(
        answering + 48.0 * 60 / 4 + 10 * 6.1
    )


class TimedScorer(FakeScorer):
    """FakeScorer that reports measured seconds per question once it has 'scored' some."""

    def __init__(self, answer_s: float, search_s: float = 0.01) -> None:
        super().__init__()
        self.answer_s, self.search_s = answer_s, search_s
        self.probed: list[tuple[str, list[str]]] = []

    def seconds_per(self, metric: str) -> float | None:
        done = {m for m, _ in self.probed}
        return {ANSWER: self.answer_s, RETRIEVAL: self.search_s}[metric] if metric in done else None

    def retrieval(self, config: PipelineConfig, index: Path, items: Sequence[EvalItem]) -> dict[str, float]:
        self.probed.append((RETRIEVAL, [it.id for it in items]))
        return {}

    def answers(self, config: PipelineConfig, index: Path, items: Sequence[EvalItem]) -> dict[str, float]:
        self.probed.append((ANSWER, [it.id for it in items]))
        return {}


def _run(tmp_path: Path, tiny_pipeline: PipelineConfig, scorer: TimedScorer, minutes: float):  # type: ignore[no-untyped-def]
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    config = config.model_copy(update={"generator": GeneratorConfig(model="tiny-generator")})
    seen: list[float | None] = []

    def stage(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        seen.append(ctx.minutes_left())
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    logs: list[str] = []
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=TuneSettings(stages=("generator",)),
        stages={"generator": stage}, report=False, scorer=scorer, log=logs.append, max_minutes=minutes,
    )  # type: ignore[arg-type]  # fmt: skip
    return state, seen, logs, reader


def test_a_stage_runs_on_what_the_report_leaves(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    scorer = TimedScorer(answer_s=6.0)
    state, seen, logs, reader = _run(tmp_path, tiny_pipeline, scorer, minutes=20.0)
    # 10 test questions (counted, never read): 4 systems x 10 answers x 6 s = 4.0 min (searches
    # untimed: no dev question has gold documents); the generator's isolated copy trains as long
    # as it does, so it gets half of the rest
    (left,) = seen
    assert left == pytest.approx((20.0 - 4.0) / 2, abs=0.05)
    assert state.stages[0].status == "kept"
    assert any("kept back for the report" in line for line in logs)
    # the probe timed the untuned pipeline's answers once, on 3 dev questions, none from the test split
    probed = [q for _, ids in scorer.probed for q in ids]
    assert [(m, len(ids)) for m, ids in scorer.probed] == [(ANSWER, 3)]
    assert set(probed) <= set(state.dev_ids)
    assert all(s is not None and "test" not in s for s in reader.requested_splits)


def test_a_stage_is_skipped_when_the_report_needs_the_whole_budget(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    state, seen, logs, _ = _run(tmp_path, tiny_pipeline, TimedScorer(answer_s=60.0), minutes=20.0)
    assert seen == []  # 4 systems x 10 answers x 60 s = 40 min > 20
    (rec,) = state.stages
    assert rec.status == "skipped" and "budget ran out" in rec.reason


def test_no_budget_no_probe(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    scorer = TimedScorer(answer_s=60.0)
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    good = config.model_copy(update={"name": "good"})
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=TuneSettings(stages=("generator",)),
        stages={"generator": lambda c, cfg, i, o: Proposal(good, i, "answer")},
        report=False, scorer=scorer, log=lambda m: None,
    )  # type: ignore[arg-type]  # fmt: skip
    assert scorer.probed == [] and state.stages[0].status == "kept"


def test_a_budgeted_stage_shares_what_is_free_with_the_budgeted_stages_after_it() -> None:
    """A 10-Q run with --folds 3 --max-minutes 60 gave the retriever 33 of 59 min and the
    generator listed after it nothing."""
    assert stage_s(3600.0, 600.0, "retriever", isolated=False, later=1) == 1500.0
    assert stage_s(3600.0, 600.0, "retriever", isolated=True, folds=3, later=1) == 1200.0
    assert stage_s(3600.0, 600.0, "scope", isolated=True, later=2) == 3000.0  # takes seconds
    per_system = 10 * 0.1 + 10 * 6.0
    assert systems((), "retriever", isolated=True, later=1) == 5  # the later stage's ablation too
    assert reserve_s(COST, (), "retriever", isolated=False, later=1) == pytest.approx(4 * per_system)


def _two_stages(
    tmp_path: Path, tiny_pipeline: PipelineConfig, scorer: TimedScorer, minutes: float, folds: int = 0
):  # type: ignore[no-untyped-def]
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    config = config.model_copy(update={"generator": GeneratorConfig(model="tiny-generator")})
    seen: dict[str, list[tuple[float | None, int]]] = {"retriever": [], "generator": []}

    def stage(name: str):  # type: ignore[no-untyped-def]
        def run(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
            seen[name].append((ctx.minutes_left(), len(ctx.train)))
            return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

        return run

    logs: list[str] = []
    settings = TuneSettings(stages=("scope", "retriever", "generator"), folds=folds)
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings, report=False, scorer=scorer,
        stages={"scope": lambda c, cfg, i, o: "no cue", "retriever": stage("retriever"),
                "generator": stage("generator")},
        log=logs.append, max_minutes=minutes,
    )  # type: ignore[arg-type]  # fmt: skip
    return state, seen, logs


def test_the_last_stage_is_not_starved_by_the_ones_before_it(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    state, seen, logs = _two_stages(tmp_path, tiny_pipeline, TimedScorer(answer_s=6.0), minutes=20.0)
    # retriever: 5 systems x 1 min kept back (its ablation and the generator's), 15 min free shared
    # with the generator, half of its 7.5 for its isolated control
    ((retriever, _),) = seen["retriever"]
    assert retriever == pytest.approx(3.75, abs=0.05)
    # generator: the retriever was kept (its control: the 1-minute floor), 5 systems; the rest
    # (~14 min) is its own, half of it for its control
    ((generator, _),) = seen["generator"]
    assert generator == pytest.approx(7.0, abs=0.1)
    assert any("shared with 1 later stage" in line for line in logs)
    assert [r.status for r in state.stages] == ["skipped", "kept", "reverted"]


@pytest.mark.parametrize("answer_s, crossfit", [(1.0, True), (6.0, False)])
def test_a_stage_whose_judging_would_eat_its_budget_is_judged_on_the_dev_split(
    tmp_path: Path, tiny_pipeline: PipelineConfig, answer_s: float, crossfit: bool
) -> None:
    """Cross-fitted, the generator stage answers all 60 non-test questions twice: 2 min at 1 s,
    12 min at 6 s, which is more than half of what it gets out of 20 (then it trains once, on
    the train split, and is judged on dev)."""
    state, seen, logs = _two_stages(
        tmp_path, tiny_pipeline, TimedScorer(answer_s=answer_s), minutes=20.0, folds=3
    )
    generator = state.stages[-1]
    assert generator.decision is not None
    if crossfit:
        assert generator.decision.folds == 3 and len(seen["generator"]) == 3  # reverted: no final run
        assert "not_cross_fitted" not in generator.extra
        # each of the 3 fold runs and the final one gets a quarter of the stage's minutes once the
        # judging (60 questions answered twice at 1 s: 2 min, after the folds) is set aside
        line = next(x for x in logs if x.startswith("stage generator:") and " min left" in x)
        stage_minutes = float(line.split(": ", 1)[1].split(" of ")[0])
        assert seen["generator"][0][0] == pytest.approx((stage_minutes - 2.0) / 4, abs=0.02)
    else:
        assert generator.decision.folds == 0 and generator.decision.n == len(state.dev_ids)
        ((_, trained_on),) = seen["generator"]
        assert trained_on == len(state.train_ids)
        assert "judging 60 questions twice" in generator.extra["not_cross_fitted"]
        assert any("not cross-fitted" in line for line in logs)


def test_what_one_fold_timed_reaches_the_next_folds_and_the_final_training(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    """The retriever stage keeps its last re-embedding's seconds in `ctx.timings`, so each later
    training leaves that much of its share for it; every fold's context must see the same record."""
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    seen: list[float | None] = []

    def stage(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        seen.append(ctx.timings.get("reindex_s"))
        ctx.timings["reindex_s"] = 30.0 + len(seen)
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    settings = TuneSettings(stages=("retriever",), folds=3)
    tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings,
        stages={"retriever": stage}, report=False, scorer=FakeScorer(), max_minutes=60.0,
    )  # type: ignore[arg-type]  # fmt: skip
    assert seen == [None, 31.0, 32.0, 33.0]  # three folds, then the kept stage on every question


def test_the_kept_stage_trains_at_least_as_long_as_each_fold_was_planned_to(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    """Fold 1 overruns its share (it spends the whole stage's time); the final training on every
    question still gets the share each of the k + 1 trainings was planned, not the nothing left."""
    import time

    reader, config = tune_setup(tmp_path, tiny_pipeline)
    given: list[float | None] = []

    def stage(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        given.append(ctx.minutes_left())
        if len(given) == 1:
            time.sleep(ctx.budget.remaining_s() * 4)  # the whole stage's time, and then some
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    settings = TuneSettings(stages=("retriever",), folds=3, isolated=False)
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings,
        stages={"retriever": stage}, report=False, scorer=FakeScorer(), max_minutes=0.12,
    )  # type: ignore[arg-type]  # fmt: skip
    assert [r.status for r in state.stages] == ["kept"] and len(given) == 4
    planned = given[0]
    assert planned is not None and given[3] is not None
    assert given[2] == pytest.approx(0.01, abs=0.005)  # fold 3: nothing left (the 0.01-minute floor)
    assert given[3] == pytest.approx(planned, rel=0.1)  # the final run: the planned share
