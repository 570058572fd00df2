"""What every tune stage gets (`TuneContext`) and returns (`Proposal`, or a reason it does not
apply). A stage is `stage(ctx, config, index_dir, out) -> Proposal | str`: it takes the current
candidate (pipeline config and the index it searches) and proposes a new one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.feedback.select import question_key
from ragsys.pipeline import PipelineConfig
from ragsys.progress import Progress
from ragsys.train.budget import TimeBudget
from ragsys.train.parallel import World
from ragsys.tune.scoring import Scorer, retrieval_metric
from ragsys.tune.settings import TuneSettings
from ragsys.types import Chunk


@dataclass
class Proposal:
    """A stage's candidate; `metric` says how the keep rule judges it on dev."""

    config: PipelineConfig
    index_dir: Path
    metric: str | None  # None: a data stage, nothing to keep or revert
    extra: dict[str, Any] = field(default_factory=dict)
    rejected: str | None = None  # the stage already knows it does not help (e.g. the reranker's dev check)


@dataclass
class TuneContext:
    settings: TuneSettings
    seed: int
    train: Sequence[EvalItem]
    dev: Sequence[EvalItem]
    feedback: Path | None
    scorer: Scorer
    budget: TimeBudget
    progress: Progress
    log: Callable[[str], None]
    synthetic: list[tuple[str, Chunk]] = field(default_factory=list)
    # every non-test question of the eval set: those not in `train` are judged (dev, the held-out
    # fold), so their --feedback records must not be trained on (`feedback_held_out`)
    questions: Sequence[EvalItem] = ()
    world: World = field(
        default_factory=World
    )  # the processes `accelerate launch` started (ragsys.tune.shared)
    # Seconds measured earlier in this run, by what was timed; shared by the per-fold copies
    # (`dataclasses.replace` keeps the same dict), so a later fold can budget for work after training.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ranking_metric(self) -> str:
        """How the ranking stages (encoder, reranker) are judged (`retrieval_metric`)."""
        return retrieval_metric(self.train)

    def feedback_held_out(self) -> tuple[str, ...]:
        """Question keys of the eval-set questions this stage does not train on (dev, the held-out
        fold): feedback about them stays out of training, so the keep rule judges unseen questions.
        Test questions are not known here (the split is not read before the report)."""
        trained = {question_key(it.question) for it in self.train}
        return tuple(sorted({question_key(it.question) for it in [*self.questions, *self.dev]} - trained))

    def minutes_left(self) -> float | None:
        left = self.budget.remaining_s()
        return None if left == float("inf") else max(left / 60.0, 0.01)

    def train_progress(self, p: Any) -> None:
        """Adapts the generator trainer's `TrainProgress` reports to (phase, done, total)."""
        self.progress(f"generator {p.phase}", p.done, p.total)


Stage = Callable[[TuneContext, PipelineConfig, Path, Path], "Proposal | str"]


def with_gold(items: Sequence[EvalItem]) -> list[EvalItem]:
    return [it for it in items if it.gold_doc_ids or it.gold_chunk_ids]


def with_reference(items: Sequence[EvalItem]) -> list[EvalItem]:
    return [it for it in items if it.answer or it.label]
