"""Retrieval metrics, computed by `ir_measures` (trec_eval semantics), never by hand.

Our measure names are lowercase (`ndcg@10`, `recall@100`, `mrr@10`, `precision@5`,
`map`); `to_ir_measure` maps them to ir_measures' (`nDCG@10`, `R@100`, `RR@10`, ...).

Before scoring, each query's ranking is normalised (`normalize_ranking`):

* the order is the one given (stably re-sorted by score, so ties keep it); the
  scores handed to trec_eval are rank-based, because trec_eval breaks score ties by
  doc id and would silently reorder them;
* a document listed more than once (one entry per retrieved chunk) counts at its
  best rank;
* a document that satisfies a gold *pattern* (`doc_matches`: a path suffix or a
  glob like SEC's `*AAPL*`) is renamed to that gold id.

A glob gold is one relevant item: the best-ranked matching document stands for it
and later matches are dropped, neither relevant nor non-relevant. So nDCG and MRR
say how early *some* matching filing came, recall@k whether one came within k; other
AAPL filings under `*AAPL*` are neither rewarded twice nor punished. To require
*every* matching document instead, expand globs against the corpus with
`items_to_qrels(items, corpus_ids=...)`, which makes each match its own gold.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import ir_measures

from ragsys.eval.evalset import EvalItem, doc_matches, is_glob
from ragsys.types import Frozen, Hit

Run = Mapping[str, Sequence[tuple[str, float]]]  # qid -> ranked (doc_id, score), best first
Qrels = Mapping[str, Mapping[str, int]]  # qid -> doc_id -> relevance grade

DEFAULT_MEASURES = ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10")
_IR_NAMES = {"ndcg": "nDCG", "recall": "R", "mrr": "RR", "precision": "P", "map": "AP"}


class RetrievalResult(Frozen):
    """Per-query values (`per_query[measure][qid]`) and their means over the scored queries."""

    measures: tuple[str, ...]
    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    n: int

    def by_query(self) -> dict[str, dict[str, float]]:
        """The same values as qid -> measure -> value (the report's shape)."""
        qids = next(iter(self.per_query.values()), {})
        return {q: {m: self.per_query[m][q] for m in self.measures} for q in qids}


def to_ir_measure(name: str) -> Any:
    """`ndcg@10` -> ir_measures' `nDCG@10`; unknown names fail with the supported list."""
    base, sep, cutoff = name.lower().partition("@")
    if base not in _IR_NAMES or (sep and not cutoff.isdigit()):
        raise ValueError(f"unknown measure {name!r}; use one of {sorted(_IR_NAMES)} with an optional @k")
    return ir_measures.parse_measure(_IR_NAMES[base] + sep + cutoff)


def retrieval_metrics(run: Run, qrels: Qrels, measures: Sequence[str] = DEFAULT_MEASURES) -> RetrievalResult:
    """Scores every query that has at least one judgement; one with no ranking scores 0.

    Queries in `run` but not in `qrels` are ignored: nothing says what is relevant.
    """
    names = tuple(dict.fromkeys(m.lower() for m in measures))
    by_ir_name = {str(to_ir_measure(m)): m for m in names}
    judged = {q: dict(g) for q, g in qrels.items() if g}
    if not judged:
        raise ValueError("no query in qrels has a judgement; nothing to score")
    ranked = {q: normalize_ranking(run.get(q, ()), judged[q]) for q in judged}
    ranked = {q: r for q, r in ranked.items() if r}
    per_query = {m: dict.fromkeys(judged, 0.0) for m in names}
    if ranked:
        measures_ir = [to_ir_measure(m) for m in names]
        for metric in ir_measures.iter_calc(measures_ir, judged, ranked):
            per_query[by_ir_name[str(metric.measure)]][metric.query_id] = float(metric.value)
    means = {m: statistics.fmean(per_query[m].values()) for m in names}
    return RetrievalResult(measures=names, per_query=per_query, means=means, n=len(judged))


def normalize_ranking(ranking: Sequence[tuple[str, float]], golds: Collection[str]) -> dict[str, float]:
    """One query's ranking as trec_eval input: deduplicated, gold-renamed, rank-scored."""
    order = sorted(ranking, key=lambda pair: -pair[1])  # stable: equal scores keep the given order
    exact = frozenset(golds)
    globs = [g for g in golds if is_glob(g)]
    plain = [g for g in golds if not is_glob(g)]
    kept: list[str] = []
    seen: set[str] = set()
    for doc_id, _ in order:
        # a plain gold can only suffix-match an id with a "/": skipping the rest keeps BEIR-sized qrels fast
        candidates = globs + plain if "/" in doc_id else globs
        key = doc_id if doc_id in exact else _resolve(doc_id, candidates, seen)
        if key is not None and key not in seen:
            seen.add(key)
            kept.append(key)
    return {doc_id: float(len(kept) - rank) for rank, doc_id in enumerate(kept)}


def _resolve(doc_id: str, candidates: Sequence[str], seen: set[str]) -> str | None:
    """The id `doc_id` is scored under, or None when it only repeats a gold already found."""
    matches = [g for g in candidates if doc_matches(g, doc_id)]
    if not matches:
        return doc_id
    return next((g for g in matches if g not in seen), None)


def items_to_qrels(
    items: Sequence[EvalItem],
    level: Literal["doc", "chunk"] = "doc",
    corpus_ids: Collection[str] | None = None,
) -> dict[str, dict[str, int]]:
    """qid -> gold id -> grade, for items that have gold ids at `level` (others are unscorable).

    Grades come from `meta["grades"]` when a converter kept them, else 1. With
    `corpus_ids`, each glob gold is replaced by every corpus id it matches; a glob that
    matches nothing is an error, since it would score 0 without saying why.
    """
    qrels: dict[str, dict[str, int]] = {}
    for item in items:
        golds = item.gold_doc_ids if level == "doc" else item.gold_chunk_ids
        grades: Mapping[str, int] = item.meta.get("grades", {}) if level == "doc" else {}
        judged: dict[str, int] = {}
        for gold in golds:
            for gid in _expand(gold, corpus_ids, item.id):
                judged[gid] = max(judged.get(gid, 0), int(grades.get(gold, 1)))
        if judged:
            qrels[item.id] = judged
    return qrels


def _expand(gold: str, corpus_ids: Collection[str] | None, item_id: str) -> list[str]:
    if corpus_ids is None or not is_glob(gold):
        return [gold]
    found = sorted(d for d in corpus_ids if doc_matches(gold, d))
    if not found:
        raise ValueError(f"item {item_id!r}: gold {gold!r} matches no document in the corpus")
    return found


def doc_ranking(hits: Sequence[Hit]) -> list[tuple[str, float]]:
    """Chunk hits as a document ranking (duplicates are fine: the best rank counts)."""
    return [(hit.chunk.doc_id, hit.score) for hit in hits]
