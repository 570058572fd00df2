"""The one recipe for training a ranker on its own mistakes: mine, train, re-index.

Examples are mined from the *current* pipeline's retrieval (the passages it wrongly ranks
high), optionally with unlabelled question-passage pairs (synthetic queries, inverse-cloze
pseudo-queries) and LM-supervised targets; the ranker trains on them; a tuned encoder's
vectors differ from the index's, so the corpus is re-embedded into a copy of it. `ragsys
train retriever|reranker` and `ragsys tune`'s retriever and reranker stages all call these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ragsys.eval.evalset import EvalItem
from ragsys.index.copy import copy_index
from ragsys.index.reader import Index
from ragsys.index.summary import IndexSummary
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.progress import PhaseReporter, Progress, counter
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
) -> RetrieverRun:
    """Mine from `config`'s retrieval over `index`, fine-tune its dense encoder into `out`, and
    with `reindex`, write a copy of the index embedded with the tuned encoder there."""
    search = config.build(index)
    examples = mine(
        items, index, search, n_negatives=train.n_negatives, depth=train.depth, skip=train.skip,
        seed=train.seed, progress=progress, pairs=pairs,
    )  # fmt: skip
    if len(examples) < 2 and not lm_scored:
        raise NoTrainingSignal(
            "no training signal: no gold documents, synthetic queries or reference answers"
        )
    result = train_retriever(
        config, train, examples, out=out, lm_scored=lm_scored,
        progress=lambda done, total: progress("training the encoder", done, total),
    )  # fmt: skip
    if reindex is None:
        return RetrieverRun(result, None)
    world, reindexed = current_world(), None
    if world.main:  # data-parallel (ragsys.train.parallel): one process re-embeds, the others wait for it
        reporter = PhaseReporter(progress, "re-embedding the corpus", log)
        reindexed = copy_index(index.path, reindex, result.pipeline.index_spec(), reporter)
    world.barrier()
    return RetrieverRun(result, reindexed)


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
) -> RerankerTrainResult:
    """Mine `train.top_n` candidates deep from `config`'s retrieval (its own reranker off), train
    a cross-encoder into `out`, and keep it only if it beats the retrieval order on `dev`."""
    config = config.model_copy(update={"reranker": None})
    search = config.build(index)
    examples = mine(
        items, index, search, n_negatives=train.n_negatives, depth=train.top_n, seed=train.seed,
        progress=progress, pairs=pairs,
    )  # fmt: skip
    examples += lm_ranked_examples(lm_scored, train.n_negatives)
    if len(examples) < 2:
        raise NoTrainingSignal("no training signal for the reranker")
    return train_reranker(
        config, train, examples, out=out, dev=dev, search=search,
        progress=lambda done, total: progress("training the reranker", done, total),
        dev_progress=lambda done, total: progress("checking the reranker on dev", done, total),
        on_dev_scores=on_dev_scores,
    )  # fmt: skip
