"""Learning a pipeline's fusion: family, RRF k and weights chosen by dev nDCG@10.

`fit_mixture` searches fusion settings over per-retriever runs of dev queries;
`fit_learned_mixture` carves that dev split (seeded) from the eval set's train questions,
runs the pipeline's retrievers on it and stores the winner in its `LearnedMixtureConfig`.
The test split is never used for fitting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import ir_measures
import numpy as np
import numpy.typing as npt
from ir_measures import nDCG

from ragsys.eval.evalset import EvalItem
from ragsys.eval.metrics import items_to_qrels
from ragsys.eval.split import carve_dev
from ragsys.fusion import (
    ConvexConfig,
    FusionConfig,
    LearnedMixtureConfig,
    Norm,
    RRFConfig,
    first_hits,
    normalize,
)
from ragsys.pipeline import Pipeline, PipelineConfig, retrieve_many
from ragsys.types import Frozen, Hit

FloatArray = npt.NDArray[np.float64]


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
    n_runs, width = len(runs[0]), max((len(first_hits(q)) for q in runs), default=0)
    shape = (len(runs), n_runs, max(width, 1))
    ranks = np.full(shape, np.inf)
    normed: dict[Norm, FloatArray] = {"minmax": np.zeros(shape), "zscore": np.zeros(shape)}
    pad = np.ones((len(runs), shape[2]), dtype=bool)
    docs: list[list[str]] = []
    for q, query_runs in enumerate(runs):
        first = first_hits(query_runs)
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


def fit_learned_mixture(
    config: PipelineConfig, search: Pipeline, train_items: list[EvalItem], corpus_ids: set[str]
) -> tuple[PipelineConfig, MixtureFit]:
    """Returns the pipeline with `fusion.fitted` set, and the fit (all candidates tried)."""
    fusion = config.fusion
    if not isinstance(fusion, LearnedMixtureConfig):
        raise ValueError(f"pipeline {config.name!r} has no learned mixture (fusion kind {fusion.kind!r})")
    scorable = [it for it in train_items if it.gold_doc_ids]
    dev_ids = set(carve_dev([it.id for it in scorable], fusion.dev_fraction, fusion.seed))
    dev = [it for it in scorable if it.id in dev_ids]
    qrels = items_to_qrels(dev, corpus_ids=corpus_ids)
    questions = [it.question for it in dev]
    per_retriever = [retrieve_many(r, questions, config.candidates) for r in search.retrievers]
    runs = [[run[i] for run in per_retriever] for i in range(len(dev))]
    fit = fit_mixture(runs, [qrels.get(it.id, {}) for it in dev], seed=fusion.seed)
    fitted = fusion.model_copy(
        update={"fitted": fit.config, "dev_ndcg_at_10": fit.ndcg_at_10, "dev_queries": fit.n_queries}
    )
    return config.model_copy(update={"fusion": fitted}), fit
