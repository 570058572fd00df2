"""The one recipe for training a ranker on its own mistakes: mine, train, re-index.

Examples are mined from the *current* pipeline's retrieval (the passages it wrongly ranks
high), optionally with unlabelled question-passage pairs (synthetic queries, inverse-cloze
pseudo-queries) and LM-supervised targets; the ranker trains on them; a tuned encoder's
vectors differ from the index's, so the corpus is re-embedded into a copy of it. `ragsys
train retriever|reranker` and `ragsys tune`'s retriever and reranker stages all call these.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ragsys.eval.evalset import EvalItem
from ragsys.index.copy import copy_index
from ragsys.index.reader import Index
from ragsys.index.summary import IndexSummary
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.progress import PhaseReporter, Progress, counter
from ragsys.train.budget import TimeBudget
from ragsys.train.examples import LMScored, TrainExample
from ragsys.train.mining.hard_negatives import examples_for_pairs, labelled_examples
from ragsys.train.mining.lm import lm_ranked_examples
from ragsys.train.parallel import current_world
from ragsys.train.reranker.config import RerankerTrainConfig, RerankerTrainResult
from ragsys.train.reranker.trainer import train_reranker
from ragsys.train.retriever import RetrieverTrainConfig, RetrieverTrainResult, train_retriever
from ragsys.types import Chunk

Pairs = Sequence[tuple[str, Chunk]]  # (question, the passage that answers it), no label file


class NoTrainingSignal(ValueError):
    """Nothing to learn from: no gold evidence, unlabelled pairs or LM targets."""


class RetrieverRun(NamedTuple):
    result: RetrieverTrainResult
    reindexed: IndexSummary | None  # the copy of the index embedded with the tuned encoder
    reindex_s: float = 0.0  # how long re-embedding the corpus took (main's time, on every process)


MIN_TRAIN_MINUTES = 0.01  # a trainer's budget must be positive; past the deadline it stops at once


def mine(
    items: Sequence[EvalItem],
    index: Index,
    search: Pipeline,
    *,
    n_negatives: int,
    depth: int,
    seed: int,
    progress: Progress,
    skip: int = 0,
    pairs: Sequence[tuple[str, Pairs]] = (),
) -> list[TrainExample]:
    """Labelled questions first (`skip` drops their top ranks, where unlabelled positives
    concentrate), then each named set of unlabelled pairs, in the order given."""
    examples = labelled_examples(
        items, index, search, n_negatives=n_negatives, depth=depth, skip=skip, seed=seed,
        on_progress=counter(progress, "mining", len(items)),
    )  # fmt: skip
    for name, some in pairs:
        tick = counter(progress, f"mining for {name}", len(some))
        examples += examples_for_pairs(some, search, n_negatives=n_negatives, depth=depth, on_progress=tick)
    return examples


def retriever_recipe(
    config: PipelineConfig,
    train: RetrieverTrainConfig,
    items: Sequence[EvalItem],
    index: Index,
    out: Path,
    *,
    progress: Progress,
    log: Callable[[str], None],
    pairs: Sequence[tuple[str, Pairs]] = (),
    lm_scored: Sequence[LMScored] = (),
    reindex: Path | None = None,
    deadline: TimeBudget | None = None,
    reindex_s: float = 0.0,
) -> RetrieverRun:
    """Mine from `config`'s retrieval over `index`, fine-tune its dense encoder into `out`, and
    with `reindex`, write a copy of the index embedded with the tuned encoder there.

    With `deadline` (the whole recipe's time), the trainer gets what is left of it once mining is
    done, less `reindex_s`, the re-embedding still to come (`ragsys tune` passes the last one it
    measured); `train.max_minutes` then caps it."""
    search = config.build(index)
    examples = mine(
        items, index, search, n_negatives=train.n_negatives, depth=train.depth, skip=train.skip,
        seed=train.seed, progress=progress, pairs=pairs,
    )  # fmt: skip
    if len(examples) < 2 and not lm_scored:
        raise NoTrainingSignal(
            "no training signal: no gold documents, synthetic queries or reference answers"
        )
    if deadline is not None:
        minutes = trainer_minutes(train.max_minutes, deadline, reindex_s)
        train = train.model_copy(update={"max_minutes": minutes})
        if train.max_minutes is not None:
            log(f"training the encoder for at most {train.max_minutes:.1f} min "
                f"({reindex_s / 60:.1f} min kept for re-embedding the corpus after it)")  # fmt: skip
    result = train_retriever(
        config, train, examples, out=out, lm_scored=lm_scored,
        progress=lambda done, total: progress("training the encoder", done, total),
    )  # fmt: skip
    if reindex is None:
        return RetrieverRun(result, None)
    world, reindexed, started = current_world(), None, time.monotonic()
    if world.main:  # data-parallel (ragsys.train.parallel): one process re-embeds, the others wait for it
        reporter = PhaseReporter(progress, "re-embedding the corpus", log)
        reindexed = copy_index(index.path, reindex, result.pipeline.index_spec(), reporter)
    # The others wait here for main (an all-reduce is a barrier) and take its time, so every
    # process gives its next trainer the same budget and all of them stop at the same step.
    took = world.sum(time.monotonic() - started if world.main else 0.0)
    return RetrieverRun(result, reindexed, took)


def trainer_minutes(cap: float | None, deadline: TimeBudget, after_s: float) -> float | None:
    """Minutes a trainer may take so that `after_s` seconds of work after it still end by
    `deadline`, at most `cap` (None: no limit).

        >>> trainer_minutes(None, TimeBudget(10.0, clock=lambda: 0.0), after_s=120.0)
        8.0
        >>> trainer_minutes(5.0, TimeBudget(10.0, clock=lambda: 0.0), after_s=0.0)
        5.0
    """
    left = deadline.remaining_s()
    if math.isinf(left):
        return cap
    minutes = max((left - after_s) / 60.0, MIN_TRAIN_MINUTES)
    return minutes if cap is None else min(cap, minutes)


def reranker_recipe(
    config: PipelineConfig,
    train: RerankerTrainConfig,
    items: Sequence[EvalItem],
    dev: Sequence[EvalItem],
    index: Index,
    out: Path,
    *,
    progress: Progress,
    pairs: Sequence[tuple[str, Pairs]] = (),
    lm_scored: Sequence[LMScored] = (),
    on_dev_scores: Callable[[Path, Mapping[tuple[str, str], float]], None] | None = None,
    deadline: TimeBudget | None = None,
) -> RerankerTrainResult:
    """Mine `train.top_n` candidates deep from `config`'s retrieval (its own reranker off), train
    a cross-encoder into `out`, and keep it only if it beats the retrieval order on `dev`. With
    `deadline`, the trainer gets what is left of it once mining is done (at most `train.max_minutes`)."""
    config = config.model_copy(update={"reranker": None})
    search = config.build(index)
    examples = mine(
        items, index, search, n_negatives=train.n_negatives, depth=train.top_n, seed=train.seed,
        progress=progress, pairs=pairs,
    )  # fmt: skip
    examples += lm_ranked_examples(lm_scored, train.n_negatives)
    if len(examples) < 2:
        raise NoTrainingSignal("no training signal for the reranker")
    if deadline is not None:
        train = train.model_copy(update={"max_minutes": trainer_minutes(train.max_minutes, deadline, 0.0)})
    return train_reranker(
        config, train, examples, out=out, dev=dev, search=search,
        progress=lambda done, total: progress("training the reranker", done, total),
        dev_progress=lambda done, total: progress("checking the reranker on dev", done, total),
        on_dev_scores=on_dev_scores,
    )  # fmt: skip
