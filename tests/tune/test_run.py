"""`tune` with fake stages and scorers: keep and revert, macro-F1 judging, resume, and no test reads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.run import tune
from ragsys.tune.settings import TuneSettings
from ragsys.tune.stages import unjudgeable
from ragsys.tune.state import load_state
from tests.fixtures.tune import FakeScorer, tune_setup


class CollapseScorer(FakeScorer):
    """Closed-set answers: "base" gets most yes questions wrong, "collapsed" answers yes to all."""

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        self.calls.append(config.name)
        labels = {}
        for i, it in enumerate(items):
            wrong_yes = it.label == "yes" and i % 3 != 0
            labels[it.id] = (
                "yes" if config.name == "collapsed" else ("maybe" if wrong_yes else it.label or "")
            )
        gold = {it.id: it.label for it in items}
        return {q: float(a == gold[q]) for q, a in labels.items()}, labels


def _named(name: str, metric: str | None = "answer"):  # type: ignore[no-untyped-def]
    def stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        ctx.log(f"running {name}")
        return Proposal(config.model_copy(update={"name": name}), index_dir, metric)

    return stage


def test_tune_judges_a_closed_set_generator_stage_on_macro_f1(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    settings = TuneSettings(stages=("generator",), isolated=False)
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings,
        stages={"generator": _named("collapsed")}, report=False, scorer=CollapseScorer(), log=lambda m: None,
    )  # type: ignore[arg-type]  # fmt: skip
    (rec,) = state.stages
    assert rec.status == "reverted" and rec.decision is not None and rec.decision.statistic == "macro_f1"
    assert "macro-F1 did not improve" in rec.reason
    # the chosen labels are kept in the state with the scores (a resumed run judges the same way)
    assert {k.split("::")[-1] for k in state.labels} == {"answer"} and len(state.labels) == 2
    assert all(set(v) == set(state.scores[k]) for k, v in state.labels.items())


def test_keep_revert_with_a_fake_metric_and_no_test_reads(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    stages = {
        "retriever": _named("good"),
        "reranker": _named("bad"),
        "mixture": lambda *a: "nothing to mix",
        "generator": _named("good2"),
    }
    settings = TuneSettings(stages=("retriever", "reranker", "mixture", "generator"), isolated=False)
    state = tune(
        config,
        tmp_path / "index",
        reader,
        tmp_path / "out",
        settings=settings,
        stages=stages,  # type: ignore[arg-type]
        report=False,
        scorer=FakeScorer(),
        log=lambda m: None,
    )  # type: ignore[arg-type]
    status = {r.name: r.status for r in state.stages}
    assert status == {"retriever": "kept", "reranker": "reverted", "mixture": "skipped", "generator": "kept"}
    assert PipelineConfig.load(tmp_path / "out").name == "good2"  # the final pipeline is saved into --out
    assert PipelineConfig.load(Path(state.current_pipeline)).name == "good2"
    # Tuning asked the reader for the non-test splits only: never the test split, never "everything".
    assert reader.requested_splits and all(s is not None and "test" not in s for s in reader.requested_splits)


def test_resume_after_an_interrupted_stage(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    reader, config = tune_setup(tmp_path, tiny_pipeline)
    runs: list[str] = []

    def crashing(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        runs.append("reranker")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the stage

    def counted(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        runs.append("retriever")
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    settings = TuneSettings(stages=("retriever", "reranker"), isolated=False)
    kwargs = {"settings": settings, "report": False, "log": lambda m: None}
    with pytest.raises(KeyboardInterrupt):
        tune(
            config,
            tmp_path / "index",
            reader,
            tmp_path / "out",
            stages={"retriever": counted, "reranker": crashing},
            scorer=FakeScorer(),
            **kwargs,
        )  # type: ignore[arg-type]
    saved = load_state(tmp_path / "out")
    assert saved is not None and [r.name for r in saved.stages] == ["retriever"]
    state = tune(
        config,
        tmp_path / "index",
        reader,
        tmp_path / "out",
        stages={"retriever": counted, "reranker": _named("good2")},
        scorer=FakeScorer(),
        **kwargs,
    )  # type: ignore[arg-type]
    assert runs == ["retriever", "reranker"]  # the finished stage did not run again
    assert [r.name for r in state.stages] == ["retriever", "reranker"] and state.train_ids == saved.train_ids
    with pytest.raises(ValueError, match="another eval set or seed"):
        tune(
            config,
            tmp_path / "index",
            reader,
            tmp_path / "out",
            seed=5,
            stages={},
            scorer=FakeScorer(),
            **kwargs,
        )  # type: ignore[arg-type]


@pytest.mark.parametrize("folds", [0, 2])
def test_an_answer_stage_nothing_could_judge_is_skipped_before_it_trains(
    tmp_path: Path, tiny_pipeline: PipelineConfig, folds: int
) -> None:
    """Thumbs without revisions give their questions no reference: the stage says so up front
    instead of training for its whole budget and then finding no dev question to score."""
    from ragsys.eval.evalset import EvalSetReader, save_eval_set

    items = [EvalItem(id=f"t{i:02d}", question=f"q{i}", split="train") for i in range(20)]
    items.append(EvalItem(id="x0", question="x0", split="test", gold_doc_ids=("d",)))
    save_eval_set(items, tmp_path / "ev.jsonl")
    ran: list[str] = []

    def training(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        ran.append("preference")
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    reader, config = EvalSetReader(tmp_path / "ev.jsonl"), tiny_pipeline.model_copy(update={"name": "base"})
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out",
        settings=TuneSettings(stages=("preference",), isolated=False, folds=folds),
        stages={"preference": training}, report=False, scorer=FakeScorer(), log=lambda m: None,
    )  # type: ignore[arg-type]  # fmt: skip
    (rec,) = state.stages
    assert ran == [] and rec.status == "skipped" and "reference answer or label" in rec.reason
    judged = items[0].model_copy(update={"answer": "12 kilograms"})  # one question that can judge it
    assert unjudgeable("preference", [judged, *items[1:]]) is None
    assert unjudgeable("retriever", items[1:]) is None  # retrieval stages are judged on gold documents
