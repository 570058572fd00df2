"""The scope stage: scoping learned on the train questions' gold documents."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.scope import ScopeConfig
from ragsys.train.budget import TimeBudget
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.retrieval_stages import scope_stage
from ragsys.tune.settings import TuneSettings


class Index:
    def __init__(self, meta: dict[str, dict[str, str]]) -> None:
        self.meta = meta

    def document_metadata(self) -> dict[str, dict[str, str]]:
        return self.meta


class Scorer:
    """Retrieval on train questions improves with routing by `gain` per confidence step."""

    def __init__(self, meta: dict[str, dict[str, str]], by_setting: dict[float | None, float]) -> None:
        self.meta, self.by_setting = meta, by_setting
        self.seen: list[tuple[float | None, int]] = []

    def index(self, path: Path) -> Index:
        return Index(self.meta)

    def retrieval(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
    ) -> dict[str, float]:
        setting = config.scoping.min_confidence if config.scoping is not None else None
        self.seen.append((setting, len(items)))
        return {it.id: self.by_setting[setting] for it in items}


def _ctx(scorer: Scorer, train: list[EvalItem]) -> TuneContext:
    return TuneContext(
        settings=TuneSettings(), seed=0, train=train, dev=[], feedback=None, scorer=scorer,  # type: ignore[arg-type]
        budget=TimeBudget(None), progress=lambda *a: None, log=lambda m: None,
    )  # fmt: skip


TRAIN = [
    EvalItem(id=f"q{i}", question=f"Apple revenue Q{i % 4 + 1} 2023?", split="train", gold_doc_ids=("a.pdf",))
    for i in range(8)
] + [EvalItem(id="free", question="no gold", split="train", answer="x")]
META = {"a.pdf": {"company": "Apple Inc.", "period": "2023 Q3"}, "b.pdf": {"company": "Intel"}}


def test_the_setting_with_the_best_train_retrieval_is_proposed(tiny_pipeline: PipelineConfig) -> None:
    scorer = Scorer(META, {None: 0.5, 1.0: 0.7, 0.5: 0.6})
    proposal = scope_stage(_ctx(scorer, TRAIN), tiny_pipeline, Path("idx"), Path("out"))
    assert isinstance(proposal, Proposal) and proposal.metric == "ndcg@10"
    assert proposal.config.scoping == ScopeConfig(min_confidence=1.0)
    assert proposal.extra["questions"] == 8 and len(proposal.extra["tried"]) == 3
    assert all(n == 8 for _, n in scorer.seen)  # only questions with gold documents


def test_no_change_no_metadata_or_no_gold_is_not_a_proposal(tiny_pipeline: PipelineConfig) -> None:
    flat = Scorer(META, {None: 0.5, 1.0: 0.5, 0.5: 0.5})  # a tie keeps the current setting (off)
    assert "is best on the train questions" in str(
        scope_stage(_ctx(flat, TRAIN), tiny_pipeline, Path("i"), Path("o"))
    )
    bare = Scorer({"a.pdf": {"title": "A"}}, {None: 0.5})
    assert "no document has metadata" in str(
        scope_stage(_ctx(bare, TRAIN), tiny_pipeline, Path("i"), Path("o"))
    )
    assert "no train question has gold" in str(
        scope_stage(_ctx(flat, TRAIN[-1:]), tiny_pipeline, Path("i"), Path("o"))
    )
