"""Cross-fitting: folds, and a tune run in which no question is judged by a stage trained on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.crossfit import fold_ids, folds_of
from ragsys.tune.run import tune
from ragsys.tune.settings import TuneSettings
from tests.fixtures.tune import tune_items, tune_setup


def test_folds_are_disjoint_cover_everything_and_are_stratified_and_seeded() -> None:
    items = tune_items(n_train=60, n_test=0)  # 30 yes, 20 no, 10 maybe
    folds = fold_ids(items, 3, seed=0)
    ids = [q for f in folds for q in f]
    assert sorted(ids) == sorted(it.id for it in items) and len(ids) == len(set(ids))
    assert sorted(len(f) for f in folds) == [20, 20, 20]
    label = {it.id: it.label for it in items}
    for f in folds:  # each fold holds a third of each label
        assert [label[q] for q in f].count("yes") == 10 and [label[q] for q in f].count("maybe") in (
            3,
            4,
        )
    assert fold_ids(list(reversed(items)), 3, seed=0) == folds  # the file's order does not matter
    assert fold_ids(items, 3, seed=1) != folds
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_ids(items, 1, seed=0)
    with pytest.raises(ValueError, match="cannot fill 5 folds"):
        fold_ids(items[:4], 5, seed=0)


def test_each_fold_trains_and_checks_itself_only_outside_its_held_out_questions() -> None:
    items = tune_items(n_train=25, n_test=0)
    folds = folds_of(items, fold_ids(items, 4, seed=0), dev_fraction=0.2, seed=0)
    assert len(folds) == 4
    for f in folds:
        held = {it.id for it in f.held_out}
        inside = {it.id for it in (*f.train, *f.dev)}
        assert not held & inside and len(held) + len(inside) == 25 and f.dev and f.train


class RecordingScorer:
    """Judges by pipeline name (a "good*" pipeline scores higher) and records what each name was scored on."""

    def __init__(self, level: float) -> None:
        self.level = level
        self.scored: dict[str, set[str]] = {}

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        self.scored.setdefault(config.name, set()).update(it.id for it in items)
        base = 0.5 if config.name == "base" else self.level
        return {it.id: base + (0.1 if i % 2 else -0.1) for i, it in enumerate(items)}, {}

    def close(self) -> None:
        pass


def _trainer(trained: dict[str, set[str]], held: dict[str, set[str]] | None = None):  # type: ignore[no-untyped-def]
    def stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        name = f"good{len(trained)}"
        trained[name] = {it.id for it in (*ctx.train, *ctx.dev)}  # everything the trainer was given
        if held is not None:  # question keys whose --feedback the stage must not train on
            held[name] = set(ctx.feedback_held_out())
        return Proposal(config.model_copy(update={"name": name}), index_dir, "answer")

    return stage


@pytest.mark.parametrize("level, kept", [(0.6, True), (0.45, False)])
def test_cross_fitted_tune_never_scores_a_question_with_a_stage_trained_on_it(
    tmp_path: Path, tiny_pipeline: PipelineConfig, level: float, kept: bool
) -> None:
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    trained: dict[str, set[str]] = {}
    held: dict[str, set[str]] = {}
    scorer = RecordingScorer(level)
    settings = TuneSettings(stages=("retriever",), isolated=False, folds=3)
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings,
        stages={"retriever": _trainer(trained, held)}, report=False, scorer=scorer,  # type: ignore[arg-type]
        log=lambda m: None,
    )  # fmt: skip
    non_test = {f"t{i:03d}" for i in range(60)}
    folds = [set(f) for f in state.folds]
    assert len(folds) == 3 and set().union(*folds) == non_test
    for f, name in zip(folds, ("good0", "good1", "good2"), strict=True):
        assert scorer.scored[name] == f  # each fold's stage is scored on its own held-out fold only
        assert not trained[name] & f and trained[name] == non_test - f  # ...and never trained on it
        # feedback about a held-out question is not trained on either (the loop's store holds the
        # eval set's own questions); question keys here are "q<i>" for id "t<i>"
        assert {f"q{int(i[1:])}" for i in f} <= held[name]
    assert scorer.scored["base"] == non_test  # the pipeline before the stage: scored on every question
    (rec,) = state.stages
    assert rec.decision is not None and rec.decision.folds == 3 and rec.decision.n == 60
    assert rec.decision.mde is not None and "smallest gain detectable" in rec.reason
    assert rec.status == ("kept" if kept else "reverted")
    if kept:  # trained once more, on all non-test questions, and that is what the pipeline now is
        assert trained["good3"] == non_test and "good3" not in scorer.scored and held["good3"] == set()
        assert PipelineConfig.load(Path(state.current_pipeline)).name == "good3"
    else:
        assert len(trained) == 3 and PipelineConfig.load(Path(state.current_pipeline)).name == "base"
    assert reader.requested_splits and all(s is not None and "test" not in s for s in reader.requested_splits)


def test_one_fold_is_refused() -> None:
    with pytest.raises(ValueError, match="one fold cannot hold anything out"):
        TuneSettings(folds=1)
