"""Fusing several retrievers' ranked lists into one.

Hits are keyed by `hit.chunk.id`; the fused list carries each chunk's first hit (in run order)
with the fused score, and ties break by chunk id so the output is deterministic. Each chunk's
terms are summed exactly (`math.fsum`): a running float sum depends on the order of the runs,
so chunks tied in exact arithmetic came out ordered by rounding noise, not by id, and listing
the retrievers in another order reordered them.

- `reciprocal_rank_fusion`: weighted RRF (Cormack et al., SIGIR 2009), sum of w / (k + rank).
  It reads ranks only, so BM25 and cosine scores never need a common scale.
- `convex_fusion`: a weighted sum of per-run normalized scores (Bruch et al., "An Analysis of
  Fusion Functions for Hybrid Retrieval", TOIS 2023), which keeps score gaps that RRF drops.
- `LearnedMixtureConfig`: one of the two, with the family, its parameter and the weights fit on a
  dev split of the train questions (`ragsys.train.mixture`) and saved with the pipeline.

This module only fuses; fitting lives in `ragsys.train.mixture`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
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
        if n_runs == 0:
            return []  # nothing to fuse (and no 1 / 0 for the convex default)
        return [default if default is not None else 1.0 / n_runs] * n_runs
    if len(weights) != n_runs:
        raise ValueError(
            f"{owner} has {len(weights)} weights but {n_runs} runs were given; "
            "give one weight per retriever, in the pipeline's retriever order"
        )
    if any(w < 0 for w in weights) or (n_runs and not any(weights)):
        raise ValueError(f"{owner} weights {tuple(weights)} must be >= 0 and not all zero")
    return [float(w) for w in weights]


def first_hits(runs: Sequence[Sequence[Hit]]) -> dict[str, Hit]:
    """Each chunk id's first hit, in run order: the hit a fused list carries for it."""
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
    terms: dict[str, list[float]] = {}
    for w, run in zip(ws, runs, strict=True):
        seen: set[str] = set()
        for rank, hit in enumerate(run, start=1):
            if hit.chunk.id not in seen:
                seen.add(hit.chunk.id)
                terms.setdefault(hit.chunk.id, []).append(w / (k + rank))
    return _ranked({c: math.fsum(t) for c, t in terms.items()}, first_hits(runs), "rrf")


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
    first = first_hits(runs)
    terms: dict[str, list[float]] = {c: [] for c in first}
    for w, run in zip(ws, runs, strict=True):
        best: dict[str, float] = {}
        for hit in run:
            best.setdefault(hit.chunk.id, hit.score)
        values, missing = normalize(np.array(list(best.values()), dtype=np.float64), norm)
        by_id = dict(zip(best, values.tolist(), strict=True))
        for c, t in terms.items():
            t.append(w * by_id.get(c, missing))
    return _ranked({c: math.fsum(t) for c, t in terms.items()}, first, "convex")


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


# --- a learned mixture: fusion settings fit on a dev split, saved with the pipeline -----------


class MixtureNotFittedError(ValueError):
    """A learned mixture was used before its weights were fit."""


class LearnedMixtureConfig(Frozen):
    """Declared unfitted (`pipelines/mixture.py`); `ragsys train mixture` (or `ragsys eval`, when
    it meets an unfitted one) fits it on a dev split carved, seeded, from the eval set's *train*
    questions and stores the winning RRF/convex setting in `fitted`. The test split is never
    used for fitting."""

    kind: Literal["learned"] = "learned"
    fit_split: str = "train"
    dev_fraction: float = Field(default=0.25, gt=0, le=1)
    seed: int = 0
    fitted: RRFConfig | ConvexConfig | None = Field(default=None, discriminator="kind")
    dev_ndcg_at_10: float | None = None
    dev_queries: int = 0

    def fuse(self, runs: Sequence[Sequence[Hit]]) -> list[Hit]:
        if self.fitted is None:
            raise MixtureNotFittedError(
                "this pipeline's learned mixture is not fitted; run `ragsys train mixture --pipeline P "
                "--index DIR --eval-set FILE --out PIPELINE_DIR` and use --pipeline PIPELINE_DIR"
            )
        return self.fitted.fuse(runs)
