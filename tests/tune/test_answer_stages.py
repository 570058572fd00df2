"""The context stage: how many passages the generator reads, chosen on train answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.settings import TuneSettings
from tests.fixtures.tune import FakeScorer, tune_items


class PassagesScorer(FakeScorer):
    """Answers improve with the passages the generator reads, up to `best`; closed-set labels."""

    def __init__(self, best: int) -> None:
        super().__init__()
        self.best = best
        self.asked: list[int | None] = []

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        k = config.generator.passages if config.generator is not None else None
        self.asked.append(k)
        right = {it.id: i % 6 < 6 - abs((k or 3) - self.best) for i, it in enumerate(items)}
        labels = {it.id: (it.label or "") if right[it.id] else "maybe" for it in items}
        return {q: float(r) for q, r in right.items()}, labels


def test_context_stage_chooses_the_passages_on_train_answers(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    from ragsys.generate.config import GeneratorConfig
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.answer_stages import context_stage
    from ragsys.tune.report import without_stage
    from ragsys.tune.state import StageRecord, TuneState

    train = [it for it in tune_items() if it.split == "train"]
    with_gen = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    logs: list[str] = []

    def ctx(best: int) -> TuneContext:
        return TuneContext(
            settings=TuneSettings(context_questions=12), seed=0, train=train, dev=[], feedback=None,
            scorer=PassagesScorer(best), budget=TimeBudget(None), progress=lambda *a: None, log=logs.append,  # type: ignore[arg-type]
        )  # fmt: skip

    c = ctx(5)
    proposal = context_stage(c, with_gen, Path("idx"), Path("out"))
    assert isinstance(proposal, Proposal) and proposal.metric == "answer"
    assert proposal.config.generator is not None and proposal.config.generator.passages == 5
    assert proposal.extra["chosen"] == 5 and set(proposal.extra["tried"]) == {"1", "3", "5"}
    assert sorted(c.scorer.asked) == [1, 3, 5] and proposal.extra["questions"] == 12  # type: ignore[attr-defined]
    assert any("5 passages ->" in m for m in logs)
    # the current setting (the run's answer_k, 3) winning is not a change: nothing to judge
    assert "current setting" in str(context_stage(ctx(3), with_gen, Path("idx"), Path("out")))
    assert context_stage(ctx(5), tiny_pipeline, Path("idx"), Path("out")) == "the pipeline has no generator"

    # the ablation removes the choice alone: the generator (and its adapter) stay as tuned
    tuned = proposal.config.model_copy(
        update={"generator": proposal.config.generator.model_copy(update={"adapter": "lora"})}
    )
    base_dir, stage_dir = tmp_path / "base", tmp_path / "context"
    with_gen.save(base_dir)
    tuned.save(stage_dir)
    rec = StageRecord(name="context", status="kept", reason="", metric="answer",
                      pipeline_dir=str(stage_dir), index_dir="idx")  # fmt: skip
    state = TuneState(
        seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline=str(base_dir), base_index="idx",
        current_pipeline=str(stage_dir), current_index="idx", stages=(rec,),
    )  # fmt: skip
    removed = without_stage(state, rec).config.generator
    assert removed is not None and removed.passages is None and removed.adapter == "lora"
