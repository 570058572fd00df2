"""The reranker's dev check: does it beat the retrieval order, and at which interpolation?

The pipeline's own candidates for the dev questions are reranked once (raw logits kept in a
`ScoreTable`), then every interpolation weight is scored through `CrossEncoderReranker`
itself, so the choice is made on exactly what inference will compute; the reranker is kept
only if some weight beats no reranker by `min_gain`.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ragsys.eval.evalset import EvalItem
from ragsys.eval.evidence import evidence_scores
from ragsys.eval.metrics import items_to_qrels, retrieval_metrics
from ragsys.eval.retrieval import retrieval_run
from ragsys.eval.stats import paired_randomization_test
from ragsys.pipeline import Pipeline
from ragsys.rerank import CrossEncoderConfig, CrossEncoderReranker, PairScorer, passage_text
from ragsys.train.budget import Progress
from ragsys.train.reranker.config import DEV_MEASURE, DevCheck, RerankerTrainConfig
from ragsys.types import Hit


def decide(check: DevCheck | None, train: RerankerTrainConfig) -> tuple[bool, float | None]:
    """Whether to use the reranker, and at which interpolation weight."""
    if check is None:  # nothing to check against: keep it, at the requested weight
        return True, train.interpolate if train.interpolate is not None else 0.0
    return check.best is not None, check.best


def choose_weight(
    without: float, by_weight: Sequence[tuple[float, float]], min_gain: float = 0.0
) -> float | None:
    """The weight with the best dev score if it beats no reranker by more than `min_gain`, else None.

    Ties go to the larger weight: more of the retrieval score is the safer of two equal choices.
    """
    if not by_weight:
        return None
    weight, score = max(by_weight, key=lambda ws: (ws[1], ws[0]))
    return weight if score > without + min_gain else None


def dev_scores(
    items: Sequence[EvalItem], runs: Sequence[Sequence[Hit]], evidence_k: int | None = None
) -> list[float]:
    """Document-level nDCG@10 per item (in order), as `ragsys eval` scores it; with `evidence_k`,
    figure recall in the first `evidence_k` passages wherever the reference states a figure
    (`ragsys.eval.evidence.evidence_scores`)."""
    result = retrieval_metrics(retrieval_run(items, runs), items_to_qrels(items), (DEV_MEASURE,))
    ndcg = [result.per_query[DEV_MEASURE][it.id] for it in items]
    return ndcg if evidence_k is None else evidence_scores(items, runs, evidence_k, ndcg)


def check_on_dev(
    dev: Sequence[EvalItem],
    search: Pipeline,
    scorer: PairScorer,
    train: RerankerTrainConfig,
    progress: Progress | None = None,
    on_scores: Callable[[Mapping[tuple[str, str], float]], None] | None = None,
) -> DevCheck | None:
    """Reranks the pipeline's own candidates (its reranker switched off) for every dev question that
    has gold documents, once, then scores each weight through `CrossEncoderReranker` itself, so the
    choice is made on exactly what inference will compute. None when no question has gold."""
    items = [it for it in dev if it.gold_doc_ids]
    if not items:
        return None
    base = dataclasses.replace(
        search, reranker=None, config=search.config.model_copy(update={"reranker": None})
    )
    questions = [it.question for it in items]
    heads = base.search_many(questions, train.top_n)
    table = ScoreTable.of(questions, heads, scorer, train, progress)
    if on_scores is not None:
        on_scores(table.scores)
    weights = (train.interpolate,) if train.interpolate is not None else train.grid
    judged = train.dev_evidence_k
    per_weight = {w: dev_scores(items, _reranked(questions, heads, table, train, w), judged) for w in weights}
    base_scores = dev_scores(items, heads, judged)
    without = statistics.fmean(base_scores)
    by_weight = tuple((w, statistics.fmean(v)) for w, v in per_weight.items())
    best = choose_weight(without, by_weight, train.min_gain)
    return DevCheck(
        questions=len(items), without=without, by_weight=by_weight, best=best,
        with_best=dict(by_weight)[best] if best is not None else None,
        p_value=paired_randomization_test(per_weight[best], base_scores) if best is not None else None,
    )  # fmt: skip


def _reranked(
    questions: Sequence[str], heads: Sequence[Sequence[Hit]], table: PairScorer, train: RerankerTrainConfig,
    weight: float,
) -> list[list[Hit]]:  # fmt: skip
    rc = CrossEncoderConfig(model="(dev)", top_n=train.top_n, max_length=train.max_length, interpolate=weight)
    return CrossEncoderReranker(rc, table).rerank_many(questions, heads, k=train.top_n)


class ScoreTable:
    """A `PairScorer` that answers from scores computed once, so each weight costs no model calls."""

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self._scores = scores

    @property
    def scores(self) -> Mapping[tuple[str, str], float]:
        return self._scores

    @classmethod
    def of(
        cls, questions: Sequence[str], heads: Sequence[Sequence[Hit]], scorer: PairScorer,
        train: RerankerTrainConfig, progress: Progress | None = None, step: int = 16,
    ) -> ScoreTable:  # fmt: skip
        """Raw cross-encoder logits for every (question, candidate) pair, via the inference path,
        `step` questions at a time so `progress` (questions done, total) can follow: on a CPU a
        dev set's top-50 lists take minutes."""
        rc = CrossEncoderConfig(model="(dev)", top_n=train.top_n, max_length=train.max_length)
        reranker = CrossEncoderReranker(rc, scorer)
        scored: list[list[Hit]] = []
        for i in range(0, len(questions), step):
            scored += reranker.rerank_many(questions[i : i + step], heads[i : i + step], k=train.top_n)
            if progress is not None:
                progress(len(scored), len(questions))
        return cls(
            {(q, passage_text(h.chunk)): h.score for q, hs in zip(questions, scored, strict=True) for h in hs}
        )

    def predict(self, inputs: list[tuple[str, str]], **kwargs: Any) -> Any:
        return np.array([self._scores[pair] for pair in inputs], dtype=np.float64)
