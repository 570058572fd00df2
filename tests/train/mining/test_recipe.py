"""The retriever recipe's time: with a deadline, mining and the re-embedding to come are paid out of
the trainer's minutes, and the re-embedding it did is timed for the next run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.progress import Progress
from ragsys.train.budget import TimeBudget
from ragsys.train.mining import recipe
from ragsys.train.retriever import RetrieverTrainConfig


def _quiet(phase: str, done: int, total: int) -> None:
    pass


@pytest.mark.parametrize("reindex_s", [0.0, 240.0])
def test_the_trainer_gets_the_deadline_less_the_re_embedding_to_come(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, reindex_s: float,
) -> None:  # fmt: skip
    root, items = built
    given: dict[str, Any] = {}
    real = recipe.train_retriever

    def spy(config: PipelineConfig, train: RetrieverTrainConfig, examples: Any, **kw: Any) -> Any:
        given["minutes"], given["left"] = train.max_minutes, deadline.remaining_s() / 60
        return real(config, train.model_copy(update={"max_minutes": None}), examples, **kw)

    monkeypatch.setattr(recipe, "train_retriever", spy)
    deadline = TimeBudget(10.0)
    progress: Progress = _quiet
    index = Index.open(root / "index")
    try:
        run = recipe.retriever_recipe(
            tiny_pipeline, RetrieverTrainConfig(batch_size=2, epochs=1), items, index, tmp_path / "out",
            progress=progress, log=lambda _: None, reindex=tmp_path / "index2",
            deadline=deadline, reindex_s=reindex_s,
        )  # fmt: skip
    finally:
        index.close()
    # what was left when training began (mining took some), less the re-embedding still to come
    assert given["minutes"] == pytest.approx(given["left"] - reindex_s / 60, abs=0.01)
    assert given["minutes"] < 10.0 - reindex_s / 60
    assert run.reindexed is not None and run.reindexed.chunks_embedded > 0
    assert run.reindex_s > 0  # timed, for the next fold to keep back


def test_the_trainer_keeps_a_sliver_past_the_deadline_and_its_own_cap() -> None:
    spent = TimeBudget(1.0, clock=lambda: 0.0)
    assert recipe.trainer_minutes(None, spent, after_s=600.0) == recipe.MIN_TRAIN_MINUTES
    assert recipe.trainer_minutes(2.0, TimeBudget(10.0, clock=lambda: 0.0), after_s=60.0) == 2.0
    assert recipe.trainer_minutes(7.0, TimeBudget(None), after_s=60.0) == 7.0  # no deadline: the cap
