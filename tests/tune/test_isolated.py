"""The isolated control: when it can reuse the joint run's reranker data, and the minutes it gets."""

from __future__ import annotations

from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import TuneContext
from ragsys.tune.settings import TuneSettings
from ragsys.tune.state import TuneState
from tests.fixtures.tune import FakeScorer


def test_isolated_control_reuses_identical_reranker_data_and_gets_the_joint_minutes(
    tiny_pipeline: PipelineConfig,
) -> None:
    from ragsys.generate.config import GeneratorConfig
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.isolated import _budgeted, _reranker_data_was_isolated
    from ragsys.tune.state import StageRecord, TuneState

    def state(retriever: str) -> TuneState:
        stages = (
            StageRecord(name="retriever", status=retriever, reason="", metric="retrieval",  # type: ignore[arg-type]
                        pipeline_dir="s/01", index_dir="s/01/index"),
            StageRecord(name="reranker", status="kept", reason="", metric="retrieval", minutes=7.0,
                        pipeline_dir="s/02", index_dir="base-index"),
        )  # fmt: skip
        return TuneState(
            seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline="base", base_index="base-index",
            current_pipeline="s/02", current_index="base-index", stages=stages,
        )  # fmt: skip

    gold = [EvalItem(id="a", question="q", split="train", gold_doc_ids=("d",))]
    answered = [gold[0].model_copy(update={"answer": "an answer"})]

    def ctx(train: list[EvalItem]) -> TuneContext:
        return TuneContext(
            settings=TuneSettings(), seed=0, train=train, dev=[], feedback=None, scorer=FakeScorer(),  # type: ignore[arg-type]
            budget=TimeBudget(0.0), progress=lambda *a: None, log=lambda m: None,
        )  # fmt: skip

    with_gen = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    # reranker trained on the untuned retrieval with gold data only: the control is the same run
    assert _reranker_data_was_isolated(ctx(gold), state("reverted"), with_gen)
    assert _reranker_data_was_isolated(
        ctx(answered), state("reverted"), tiny_pipeline
    )  # no LM, no LM targets
    # its candidates came from a tuned retriever, or it had LM-supervised targets: retrain the control
    assert not _reranker_data_was_isolated(ctx(gold), state("kept"), with_gen)
    assert not _reranker_data_was_isolated(ctx(answered), state("reverted"), with_gen)
    synthetic = ctx(gold)
    synthetic.synthetic.append(("a question", None))  # type: ignore[arg-type]
    assert not _reranker_data_was_isolated(synthetic, state("reverted"), with_gen)
    # the run's budget is spent, yet the control trains as long as the joint stage took
    spent = ctx(gold)
    assert spent.budget.expired
    control = _budgeted(spent, state("reverted").stages[1])
    assert not control.budget.expired and 6.9 < (control.minutes_left() or 0) <= 7.0


def test_isolated_control_keeps_scoping_when_the_retriever_is_also_kept(
    tiny_pipeline: PipelineConfig, tmp_path: Path
) -> None:
    """Scoping and a tuned retriever both kept: the control routes like the joint run and searches
    with the retriever trained apart (here the joint one, whose data was gold-only)."""
    from ragsys.retrieve.dense import DenseConfig
    from ragsys.scope import ScopeConfig
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.isolated import build_isolated
    from ragsys.tune.state import StageRecord

    base_dir = tmp_path / "base"
    tiny_pipeline.save(base_dir)
    scoped = tiny_pipeline.model_copy(update={"scoping": ScopeConfig(min_confidence=1.0)})
    scoped.save(tmp_path / "s01")
    tuned_dense = DenseConfig(model=str(tmp_path / "tuned-encoder"))
    retrieved = scoped.model_copy(update={"retrievers": (tiny_pipeline.retrievers[0], tuned_dense)})
    retrieved.save(tmp_path / "s02")
    stages = (
        StageRecord(name="scope", status="kept", reason="", metric="ndcg@10",
                    pipeline_dir=str(tmp_path / "s01"), index_dir="base-index"),
        StageRecord(name="retriever", status="kept", reason="", metric="evidence", minutes=3.0,
                    pipeline_dir=str(tmp_path / "s02"), index_dir=str(tmp_path / "s02-index"),
                    extra={"lm_examples": 0}),
    )  # fmt: skip
    state = TuneState(
        seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline=str(base_dir), base_index="base-index",
        current_pipeline=str(tmp_path / "s02"), current_index=str(tmp_path / "s02-index"), stages=stages,
    )  # fmt: skip
    ctx = TuneContext(
        settings=TuneSettings(), seed=0, train=[], dev=[], feedback=None, scorer=FakeScorer(),  # type: ignore[arg-type]
        budget=TimeBudget(None), progress=lambda *a: None, log=lambda m: None,
    )  # fmt: skip
    control = build_isolated(ctx, state, tmp_path / "isolated")
    assert control is not None
    assert control.config.scoping == ScopeConfig(min_confidence=1.0)
    assert control.config.retrievers[1] == tuned_dense
    assert control.index_dir == tmp_path / "s02-index"
