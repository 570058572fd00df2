"""The isolated control: when it can reuse the joint run's reranker data, and the minutes it gets."""

from __future__ import annotations

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
