"""Fusing several retrievers' ranked lists into one.

Hits are keyed by `hit.chunk.id`; the fused list carries each chunk's first hit (in run order)
with the fused score, and ties break by chunk id so the output is deterministic.

- `reciprocal_rank_fusion`: weighted RRF (Cormack et al., SIGIR 2009), sum of w / (k + rank).
  It reads ranks only, so BM25 and cosine scores never need a common scale.
- `convex_fusion`: a weighted sum of per-run normalized scores (Bruch et al., "An Analysis of
  Fusion Functions for Hybrid Retrieval", TOIS 2023), which keeps score gaps that RRF drops.

`fit_mixture` picks the family, its parameter and the weights that maximize dev nDCG@10.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import ir_measures
import numpy as np
import numpy.typing as npt
from ir_measures import nDCG
from pydantic import Field

from ragsys.types import Frozen, Hit

FloatArray = npt.NDArray[np.float64]
Norm = Literal["minmax", "zscore"]


def check_weights(
    weights: Sequence[float] | None, n_runs: int, owner: str, default: float | None = None
) -> list[float]:
    """One weight per run, non-negative, not all zero. Without weights each run gets `default`,
    or 1 / n_runs (a convex combination) when that is None."""
    if weights is None:
        return [default if default is not None else 1.0 / n_runs] * n_runs
    if len(weights) != n_runs:
        raise ValueError(
            f"{owner} has {len(weights)} weights but {n_runs} runs were given; "
            "give one weight per retriever, in the pipeline's retriever order"
        )
    if any(w < 0 for w in weights) or (n_runs and not any(weights)):
        raise ValueError(f"{owner} weights {tuple(weights)} must be >= 0 and not all zero")
    return [float(w) for w in weights]


def _first_hits(runs: Sequence[Sequence[Hit]]) -> dict[str, Hit]:
    first: dict[str, Hit] = {}
    for run in runs:
        for hit in run:
            first.setdefault(hit.chunk.id, hit)
    return first


def _ranked(fused: dict[str, float], first: dict[str, Hit], source: str) -> list[Hit]:
    order = sorted(fused, key=lambda c: (-fused[c], c))  # id tie-break keeps output deterministic
    return [first[c].model_copy(update={"score": fused[c], "source": source}) for c in order]


def reciprocal_rank_fusion(
    runs: Sequence[Sequence[Hit]], k: float = 60, weights: Sequence[float] | None = None
) -> list[Hit]:
    """Weighted RRF: each run adds w / (k + rank) for the chunks it returned (ranks from 1).

    A chunk listed twice in one run counts once, at its best rank.

    Example:
        >>> fused = reciprocal_rank_fusion([bm25.retrieve(q, 100), dense.retrieve(q, 100)], k=60)
    """
    ws = check_weights(weights, len(runs), "reciprocal_rank_fusion", default=1.0)  # classic RRF
    fused: dict[str, float] = {}
    for w, run in zip(ws, runs, strict=True):
        seen: set[str] = set()
        for rank, hit in enumerate(run, start=1):
            if hit.chunk.id not in seen:
                seen.add(hit.chunk.id)
                fused[hit.chunk.id] = fused.get(hit.chunk.id, 0.0) + w / (k + rank)
    return _ranked(fused, _first_hits(runs), "rrf")


def normalize(scores: FloatArray, norm: Norm) -> tuple[FloatArray, float]:
    """A run's scores normalized, and the value a chunk missing from the run gets.

    minmax maps to [0, 1] and a missing chunk gets 0, tied with the run's last hit. A run
    whose scores are all equal (one hit, say) has no order to keep, only membership: its hits
    get 1. zscore maps to (s - mean) / std and a missing chunk gets the run's lowest z; a
    constant run gives every chunk, present or not, z = 0, so it does not sway the fusion.
    An empty run gives every chunk the missing value, so it changes no order either.
    """
    if scores.size == 0:
        return scores, 0.0
    if norm == "minmax":
        lo, span = float(scores.min()), float(scores.max() - scores.min())
        return ((scores - lo) / span if span > 0 else np.ones_like(scores)), 0.0
    std = float(scores.std())
    z = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    return z, float(z.min())


def convex_fusion(
    runs: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None, norm: Norm = "minmax"
) -> list[Hit]:
    """Weighted sum of normalized scores; see `normalize` for degenerate and missing cases.

    A chunk listed twice in one run keeps its first (best-ranked) score.
    """
    ws = check_weights(weights, len(runs), "convex_fusion")
    first = _first_hits(runs)
    fused = dict.fromkeys(first, 0.0)
    for w, run in zip(ws, runs, strict=True):
        best: dict[str, float] = {}
        for hit in run:
            best.setdefault(hit.chunk.id, hit.score)
        values, missing = normalize(np.array(list(best.values()), dtype=np.float64), norm)
        by_id = dict(zip(best, values.tolist(), strict=True))
        for c in fused:
            fused[c] += w * by_id.get(c, missing)
    return _ranked(fused, first, "convex")


class RRFConfig(Frozen):
    """Weighted RRF; `weights` (one per retriever, scale-free) default to equal."""

    kind: Literal["rrf"] = "rrf"
    k: float = Field(default=60.0, ge=0)
    weights: tuple[float, ...] | None = None

    def fuse(self, runs: Sequence[Sequence[Hit]]) -> list[Hit]:
        return reciprocal_rank_fusion(runs, self.k, check_weights(self.weights, len(runs), "RRFConfig", 1.0))


class ConvexConfig(Frozen):
    """Convex combination of normalized scores; `weights` default to equal."""

    kind: Literal["convex"] = "convex"
    norm: Norm = "minmax"
    weights: tuple[float, ...] | None = None

    def fuse(self, runs: Sequence[Sequence[Hit]]) -> list[Hit]:
        return convex_fusion(runs, check_weights(self.weights, len(runs), "ConvexConfig"), self.norm)


FusionConfig = Annotated[RRFConfig | ConvexConfig, Field(discriminator="kind")]


# --- learning the mixture on a dev set -------------------------------------------------------


class MixtureCandidate(Frozen):
    """One fusion setting tried by `fit_mixture`, with its mean dev nDCG@10."""

    config: FusionConfig
    ndcg_at_10: float


class MixtureFit(Frozen):
    """The best fusion setting on the dev queries, and every setting tried (in search order)."""

    config: FusionConfig
    ndcg_at_10: float
    candidates: tuple[MixtureCandidate, ...]
    n_queries: int
    seed: int


@dataclass(frozen=True)
class _DevSet:
    """Per-query arrays built once, so a candidate costs one einsum, one argsort and one eval.

    Units (a query's chunks, pooled over runs) are sorted by chunk id, so a stable argsort of
    the fused scores breaks ties by id exactly as the fusion functions do.
    """

    qids: list[str]
    ranks: FloatArray  # (Q, R, U): 1-based rank of unit u in run r; inf when absent or padding
    normed: dict[Norm, FloatArray]  # (Q, R, U): normalized score, the run's missing value if absent
    pad: npt.NDArray[np.bool_]  # (Q, U): True past the query's last unit
    docs: list[list[str]]  # doc id of each unit


def _dev_set(
    runs: Sequence[Sequence[Sequence[Hit]]], qids: list[str], doc_id: Callable[[Hit], str]
) -> _DevSet:
    n_runs, width = len(runs[0]), max((len(_first_hits(q)) for q in runs), default=0)
    shape = (len(runs), n_runs, max(width, 1))
    ranks = np.full(shape, np.inf)
    normed: dict[Norm, FloatArray] = {"minmax": np.zeros(shape), "zscore": np.zeros(shape)}
    pad = np.ones((len(runs), shape[2]), dtype=bool)
    docs: list[list[str]] = []
    for q, query_runs in enumerate(runs):
        first = _first_hits(query_runs)
        units = sorted(first)
        where = {c: u for u, c in enumerate(units)}
        pad[q, : len(units)] = False
        docs.append([doc_id(first[c]) for c in units])
        for r, run in enumerate(query_runs):
            best: dict[str, tuple[int, float]] = {}
            for rank, hit in enumerate(run, start=1):
                best.setdefault(hit.chunk.id, (rank, hit.score))
            cols = [where[c] for c in best]
            ranks[q, r, cols] = [rank for rank, _ in best.values()]
            for norm in normed:
                values, missing = normalize(np.array([s for _, s in best.values()], dtype=np.float64), norm)
                normed[norm][q, r, : len(units)] = missing
                normed[norm][q, r, cols] = values
    return _DevSet(qids, ranks, normed, pad, docs)


def _simplex(n: int, steps: int, left: int | None = None) -> list[tuple[float, ...]]:
    """Every weight vector on the grid {0, 1/steps, ..., 1} that sums to 1 (`left`/steps here)."""
    left = steps if left is None else left
    if n == 1:
        return [(round(left / steps, 6),)]
    return [
        (round(i / steps, 6), *rest) for i in range(left, -1, -1) for rest in _simplex(n - 1, steps, left - i)
    ]


class _Scorer:
    """Mean nDCG@10 (ir_measures) of one fusion family at given weights, on the dev set."""

    def __init__(self, dev: _DevSet, qrels: dict[str, dict[str, int]]) -> None:
        self._dev = dev
        self._evaluator = ir_measures.evaluator([nDCG @ 10], qrels)

    def features(self, config: RRFConfig | ConvexConfig) -> FloatArray:
        if isinstance(config, RRFConfig):
            return 1.0 / (config.k + self._dev.ranks)  # absent: 1 / inf = 0
        return self._dev.normed[config.norm]

    def __call__(self, features: FloatArray, weights: Sequence[float]) -> float:
        fused = np.einsum("qru,r->qu", features, np.asarray(weights, dtype=np.float64))
        fused[self._dev.pad] = -np.inf
        order = np.argsort(-fused, axis=1, kind="stable")
        run: dict[str, dict[str, float]] = {}
        for qid, units, docs, pad in zip(self._dev.qids, order, self._dev.docs, self._dev.pad, strict=True):
            top: dict[str, float] = {}
            for u in units:
                if pad[u] or len(top) == 10:
                    break
                top.setdefault(docs[u], float(10 - len(top)))  # best-ranked chunk per doc; distinct scores
            run[qid] = top
        return float(self._evaluator.calc_aggregate(run)[nDCG @ 10])


def _ascend(
    score: Callable[[tuple[float, ...]], float], n: int, steps: int, rng: np.random.Generator
) -> None:
    """Coordinate ascent from equal weights: set one weight on the grid, rescale the rest."""
    best_w = tuple([round(1.0 / n, 6)] * n)
    best = score(best_w)
    improved = True
    while improved:
        improved = False
        for r in rng.permutation(n):
            base = best_w
            rest = sum(base) - base[r]
            for i in range(steps + 1):
                v = i / steps
                w = [(x / rest * (1 - v) if rest > 0 else (1 - v) / (n - 1)) for x in base]
                w[r] = v
                cand = tuple(round(x, 6) for x in w)
                if (s := score(cand)) > best:
                    best, best_w, improved = s, cand, True


@dataclass
class _FamilySearch:
    """One fusion family's search: scores each weight vector once and records every try."""

    scorer: _Scorer
    family: RRFConfig | ConvexConfig
    features: FloatArray
    tried: list[MixtureCandidate]
    cache: dict[tuple[float, ...], float] = field(default_factory=dict)

    def __call__(self, weights: tuple[float, ...]) -> float:
        if weights not in self.cache:
            self.cache[weights] = self.scorer(self.features, weights)
            config = self.family.model_copy(update={"weights": weights})
            self.tried.append(MixtureCandidate(config=config, ndcg_at_10=self.cache[weights]))
        return self.cache[weights]


def _weights(candidate: MixtureCandidate) -> tuple[float, ...]:
    return candidate.config.weights or (1.0,)


def fit_mixture(
    runs: Sequence[Sequence[Sequence[Hit]]],
    qrels: Sequence[Mapping[str, int]],
    doc_id: Callable[[Hit], str] = lambda h: h.chunk.doc_id,
    seed: int = 0,
    rrf_ks: Sequence[float] = (10, 30, 60, 100),
    norms: Sequence[Norm] = ("minmax", "zscore"),
    grid_steps: int = 10,
) -> MixtureFit:
    """Chooses fusion family, RRF k and weights (summing to 1) by mean nDCG@10 on a dev set.

    `runs[q][r]` is retriever r's ranked hits for query q, `qrels[q]` maps relevant doc ids to
    grades. Queries without a positive grade are left out: they score 0 under every setting.
    Weights come from a simplex grid for up to three retrievers, and from coordinate ascent
    (coordinate order drawn from `seed`) beyond. Ties go to the most even weights, then to the
    earlier setting in search order: the flattest of equally good mixtures overfits least.
    """
    n_runs = _check_dev_set(runs, qrels)
    keep = [q for q, grades in enumerate(qrels) if any(g > 0 for g in grades.values())]
    if not keep:
        raise ValueError("fit_mixture needs at least one query with a relevant document (grade > 0)")
    qids = [str(q) for q in keep]
    scorer = _Scorer(_dev_set([runs[q] for q in keep], qids, doc_id), {str(q): dict(qrels[q]) for q in keep})
    families: list[RRFConfig | ConvexConfig] = [RRFConfig(k=k) for k in rrf_ks] + [
        ConvexConfig(norm=n) for n in norms
    ]
    tried: list[MixtureCandidate] = []
    rng = np.random.default_rng(seed)
    for family in families:
        score = _FamilySearch(scorer, family, scorer.features(family), tried)
        if n_runs <= 3:
            for w in _simplex(n_runs, grid_steps):
                score(w)
        else:
            _ascend(score, n_runs, grid_steps, rng)
    ranked = sorted(
        range(len(tried)), key=lambda i: (-round(tried[i].ndcg_at_10, 10), max(_weights(tried[i])), i)
    )
    best = tried[ranked[0]]
    return MixtureFit(
        config=best.config,
        ndcg_at_10=best.ndcg_at_10,
        candidates=tuple(tried),
        n_queries=len(keep),
        seed=seed,
    )


def _check_dev_set(runs: Sequence[Sequence[Sequence[Hit]]], qrels: Sequence[Mapping[str, int]]) -> int:
    if len(runs) != len(qrels):
        raise ValueError(f"fit_mixture got runs for {len(runs)} queries but qrels for {len(qrels)}")
    counts = {len(q) for q in runs}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"every query needs the same, non-zero number of runs (one per retriever); got {sorted(counts)}"
        )
    return counts.pop()
