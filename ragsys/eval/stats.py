"""Uncertainty for per-query metrics: bootstrap CIs and a paired randomization test.

Per-query values, not means, are the unit: two systems run on the same queries are
paired, and pairing removes the (large) between-query variance from the comparison
(Smucker, Allan & Carterette 2007 recommend the randomization test for IR).

Macro-F1 (closed-set labels) is not a mean over questions, so it gets bootstraps of its own
that resample questions and recompute it: `bootstrap_macro_f1`, `paired_macro_f1_delta`.

Everything is vectorised numpy and seeded: the same inputs and seed give the same
numbers on every run. Resamples are drawn in blocks so memory stays bounded
(about 8M indices at a time) whatever the number of queries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from ragsys.eval.answers import LABELS, label_accuracy_and_macro_f1

FloatArray = npt.NDArray[np.float64]
_BLOCK_ELEMENTS = 8_000_000


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 10_000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: the alpha/2 and 1-alpha/2 quantiles of resampled means."""
    return _percentile_ci(_as_array(values, "values"), n_resamples, alpha, seed)


def paired_bootstrap_delta_ci(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10_000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """CI of mean(a - b), resampling queries (so each pair stays together)."""
    return _percentile_ci(_paired_diff(a, b), n_resamples, alpha, seed)


def paired_randomization_test(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value that mean(a - b) is 0, by randomly flipping the sign of each difference.

    Under the null the two systems are exchangeable per query, so each difference is
    as likely negated. The observed statistic counts as one resample ((hits + 1) /
    (n + 1)), so p is never 0, and identical runs give exactly 1.
    """
    d = _paired_diff(a, b)
    _check(n_resamples, 0.05)
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # float noise must not turn a tie into a miss
    rng = np.random.default_rng(seed)
    hits = 0
    for block in _blocks(n_resamples, d.size):
        signs = rng.integers(0, 2, size=(block, d.size)) * 2 - 1
        hits += int(np.count_nonzero(np.abs((signs * d).mean(axis=1)) >= observed - tol))
    return (hits + 1) / (n_resamples + 1)


def _percentile_ci(x: FloatArray, n_resamples: int, alpha: float, seed: int) -> tuple[float, float]:
    _check(n_resamples, alpha)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [x[rng.integers(0, x.size, size=(b, x.size))].mean(axis=1) for b in _blocks(n_resamples, x.size)]
    )
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _paired_diff(a: Sequence[float], b: Sequence[float]) -> FloatArray:
    x, y = _as_array(a, "a"), _as_array(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    return x - y


def _as_array(values: Sequence[float], name: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _check(n_resamples: int, alpha: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _blocks(n_resamples: int, n_values: int) -> Iterator[int]:
    """Block sizes summing to n_resamples, each block holding at most ~8M draws."""
    size = max(1, _BLOCK_ELEMENTS // n_values)
    for start in range(0, n_resamples, size):
        yield min(size, n_resamples - start)


def bootstrap_macro_f1(
    preds: Sequence[str], golds: Sequence[str], n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of macro-F1, resampling questions (macro-F1 is not a mean)."""
    rng = np.random.default_rng(seed)
    n = len(preds)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        values.append(
            label_accuracy_and_macro_f1([preds[i] for i in idx], [golds[i] for i in idx], LABELS)[1]
        )
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def paired_macro_f1_delta(
    preds: Sequence[str],
    base_preds: Sequence[str],
    golds: Sequence[str],
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """macro-F1(preds) - macro-F1(base_preds) on the same questions, with a paired percentile
    bootstrap CI (both systems scored on each resample of the questions): (delta, lo, hi)."""

    def f1(p: Sequence[str], g: Sequence[str]) -> float:
        return label_accuracy_and_macro_f1(p, g, LABELS)[1]

    rng = np.random.default_rng(seed)
    n = len(golds)
    deltas = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        g = [golds[i] for i in idx]
        deltas.append(f1([preds[i] for i in idx], g) - f1([base_preds[i] for i in idx], g))
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return f1(preds, golds) - f1(base_preds, golds), float(lo), float(hi)
