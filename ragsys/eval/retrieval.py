"""`ragsys eval`: run a pipeline over an eval set's questions and score the rankings.

Retrieval is scored at the document level (a chunk hit counts for its document,
at its best rank) with ir-measures; CIs are percentile bootstraps over queries. Where a
question's reference answer states figures, the passages are scored too: `figure_recall@5` and
`figure_recall@10`, the share of those figures the first 5 and 10 chunks state
(`ragsys.eval.evidence`), since document-level gold cannot tell the chunk that answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.eval.evidence import RECALL_AT, figure_recall_at
from ragsys.eval.metrics import doc_ranking, items_to_qrels, retrieval_metrics
from ragsys.pipeline import Pipeline
from ragsys.types import Hit

DEPTH = 100  # documents per query: Recall@100 needs them
CHUNKS_PER_DOC = 2  # ask for more chunks than documents: several chunks may share a document


def search_all(
    pipeline: Pipeline, questions: Sequence[str], depth: int = DEPTH,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[Hit]]:  # fmt: skip
    """Hits for every question, batching the retrievers that can batch (dense encoding)."""
    return pipeline.search_many(questions, depth * CHUNKS_PER_DOC, on_progress=on_progress)


def search_items(
    pipeline: Pipeline, items: Sequence[EvalItem], depth: int = DEPTH,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[Hit]]:  # fmt: skip
    """`search_all` for eval items; an unanswerable item searches without its excluded documents."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.exclude_doc_ids, []).append(i)
    out: list[list[Hit]] = [[] for _ in items]
    for excluded, ids in groups.items():
        filters = {"!doc": excluded} if excluded else None
        found = pipeline.search_many(
            [items[i].question for i in ids], depth * CHUNKS_PER_DOC, on_progress=on_progress, filters=filters
        )
        for i, hits in zip(ids, found, strict=True):
            out[i] = hits
    return out


def retrieval_run(
    items: Sequence[EvalItem], hits: Sequence[Sequence[Hit]], depth: int = DEPTH
) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = {}
    for item, item_hits in zip(items, hits, strict=True):
        seen: set[str] = set()
        ranking: list[tuple[str, float]] = []
        for doc, score in doc_ranking(item_hits):
            if doc not in seen:
                seen.add(doc)
                ranking.append((doc, score))
        run[item.id] = ranking[:depth]
    return run


def score_retrieval(
    items: Sequence[EvalItem], hits: Sequence[Sequence[Hit]]
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The run itself (for the record) and per-query retrieval metrics."""
    qrels = items_to_qrels(items)
    if not qrels:
        raise ValueError("no item of this split has gold_doc_ids; retrieval cannot be scored")
    run = retrieval_run(items, hits)
    per_query = retrieval_metrics({q: run.get(q, []) for q in qrels}, qrels).by_query()
    for item, item_hits in zip(items, hits, strict=True):
        if item.id in per_query and item.answer:
            texts = [h.chunk.text for h in item_hits[: max(RECALL_AT)]]
            per_query[item.id].update(figure_recall_at(item.answer, texts))
    return {"run": {q: [[d, s] for d, s in r] for q, r in run.items()}}, per_query
