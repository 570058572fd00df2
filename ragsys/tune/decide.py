"""The keep/revert rule: a stage stays only if dev improves, by a paired test.

Pure: per-question dev scores before and after the stage in, a decision out. "Improves"
means the mean went up and a paired randomization test says the rise is unlikely under
"no difference" (p below `alpha`). Ties and noise revert: a stage that cannot show its
worth on dev is not allowed to change the pipeline.

Closed-set answers (yes/no/maybe) are judged on label macro-F1 instead (`decide_labels`):
accuracy rewards answering the majority label to everything. A PubMedQA generator stage
kept on accuracy went from 36% to 55% on test by answering "yes" 100 times out of 100,
which is the share of "yes" among those questions; its macro-F1 fell.

Every decision also states its power: `mde`, the smallest true gain the test would detect
80% of the time at `alpha` (normal approximation, `min_detectable`), so a reverted stage
says whether "not shown" meant "no gain" or "too few questions to tell".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

from ragsys.eval.evalset import EvalItem
from ragsys.eval.stats import paired_randomization_test
from ragsys.types import Frozen


class Decision(Frozen):
    kept: bool
    before: float
    after: float
    delta: float
    p_value: float
    n: int
    reason: str
    statistic: str = "mean"  # what before/after are: the mean per-question score, or "macro_f1"
    mde: float | None = None  # smallest gain detectable with 80% power (None: too few questions)
    folds: int = 0  # cross-fitted over this many folds (0: one dev split)


POWER = 0.8


def min_detectable(sd: float, alpha: float, power: float = POWER) -> float:
    """(z_{1-alpha/2} + z_{power}) x sd: the true effect a two-sided test at `alpha` detects
    with probability `power`, where `sd` is the standard error of the measured delta.

        >>> round(min_detectable(0.01, alpha=0.05), 4)
        0.028
    """
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd


def _power_note(mde: float | None) -> str:
    return (
        f"; smallest gain detectable at 80% power: {mde:.4f}"
        if mde is not None
        else "; too few questions to state power"
    )


def decide(
    before: Mapping[str, float], after: Mapping[str, float], alpha: float = 0.1, seed: int = 0
) -> Decision:
    ids = sorted(set(before) & set(after))
    if not ids:
        raise ValueError("no dev question was scored both before and after the stage")
    a = [after[i] for i in ids]
    b = [before[i] for i in ids]
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    p = paired_randomization_test(a, b, seed=seed)
    delta = mean_a - mean_b
    kept = delta > 0 and p < alpha
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mde = min_detectable(float(diffs.std(ddof=1)) / np.sqrt(len(ids)), alpha) if len(ids) > 1 else None
    if kept:
        reason = f"dev improved by {delta:+.4f} (p={p:.3f} < {alpha})"
    elif delta <= 0:
        reason = f"dev did not improve ({delta:+.4f}); reverted"
    else:
        reason = f"dev rose {delta:+.4f} but p={p:.3f} >= {alpha}: not shown; reverted"
    return Decision(
        kept=kept, before=mean_b, after=mean_a, delta=delta, p_value=p, n=len(ids),
        reason=reason + _power_note(mde), mde=mde,
    )  # fmt: skip


def decide_labels(
    before: Mapping[str, str],
    after: Mapping[str, str],
    gold: Mapping[str, str],
    labels: Sequence[str] = ("yes", "no", "maybe"),
    alpha: float = 0.1,
    seed: int = 0,
    n_resamples: int = 10_000,
) -> Decision:
    """Keep only if label macro-F1 on dev rose with p < alpha, by a paired permutation test:
    under "no difference" the two systems' answers to each question are exchangeable, so each
    resample swaps them per question with probability 1/2 and recomputes the macro-F1 gap."""
    ids = sorted(set(before) & set(after) & set(gold))
    if not ids:
        raise ValueError("no dev question was answered with a label both before and after the stage")
    code = {label: i for i, label in enumerate(labels)}
    other = len(labels)  # a label outside the set: counts as wrong, scores for no class
    a = np.array([code.get(after[i], other) for i in ids])
    b = np.array([code.get(before[i], other) for i in ids])
    g = np.array([code.get(gold[i], other) for i in ids])
    f1_a, f1_b = float(macro_f1(a[None], g, len(labels))[0]), float(macro_f1(b[None], g, len(labels))[0])
    observed = abs(f1_a - f1_b)
    rng = np.random.default_rng(seed)
    hits = 0
    null: list[np.ndarray] = []  # signed gaps under "no difference": their spread gives the power
    for start in range(0, n_resamples, 1000):
        swap = rng.integers(0, 2, size=(min(1000, n_resamples - start), len(ids))).astype(bool)
        x, y = np.where(swap, b, a), np.where(swap, a, b)
        signed = macro_f1(x, g, len(labels)) - macro_f1(y, g, len(labels))
        null.append(signed)
        hits += int(np.count_nonzero(np.abs(signed) >= observed - 1e-12))
    p = (hits + 1) / (n_resamples + 1)
    spread = float(np.concatenate(null).std()) if null else 0.0
    mde = min_detectable(spread, alpha) if len(ids) > 1 and spread > 0 else None
    delta = f1_a - f1_b
    kept = delta > 0 and p < alpha
    counts = Counter(after[i] for i in ids)
    chosen = ", ".join(f"{label} {counts.get(label, 0)}" for label in labels)
    accuracy = f"accuracy {np.mean(b == g):.3f} -> {np.mean(a == g):.3f}"
    if kept:
        reason = (
            f"dev label macro-F1 improved by {delta:+.4f} (p={p:.3f} < {alpha}; {accuracy}; answers {chosen})"
        )
    elif delta <= 0:
        reason = f"dev label macro-F1 did not improve ({delta:+.4f}; {accuracy}; answers {chosen}); reverted"
    else:
        reason = (
            f"dev label macro-F1 rose {delta:+.4f} but p={p:.3f} >= {alpha} ({accuracy}; answers {chosen}): "
            "not shown; reverted"
        )
    return Decision(
        kept=kept, before=f1_b, after=f1_a, delta=delta, p_value=p, n=len(ids),
        reason=reason + _power_note(mde), statistic="macro_f1", mde=mde,
    )  # fmt: skip


def closed_set_gold(
    items: Sequence[EvalItem], *answered: Mapping[str, str], labels: Sequence[str] = ("yes", "no", "maybe")
) -> dict[str, str] | None:
    """question id -> gold label, when every item has one of `labels` and every mapping in
    `answered` (the labels candidates chose) covers them all: then macro-F1 judges; else None."""
    gold = {it.id: (it.label or "").strip().lower() for it in items}
    if not gold or any(g not in labels for g in gold.values()):
        return None
    return gold if all(set(gold) <= set(chosen) for chosen in answered) else None


def macro_f1(preds: np.ndarray, gold: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each row of `preds` [R, n] (label codes) against `gold` [n]: one value per
    row [R]. A code >= n_labels matches no class; a class never predicted nor gold has F1 0.
    `ragsys.eval.answers.label_accuracy_and_macro_f1` on code arrays, vectorized over the
    permutation test's thousands of resamples."""
    f1 = np.zeros(preds.shape[0])
    for c in range(n_labels):
        p, t = preds == c, gold == c  # [R, n], [n]
        tp = np.sum(p & t, axis=1)
        denom = np.sum(p, axis=1) + np.sum(t)  # 2tp + fp + fn
        f1 += np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1 / n_labels
