"""The keep/revert rule: a stage stays only if dev improves, by a paired test.

Pure: per-question dev scores before and after the stage in, a decision out. "Improves"
means the mean went up and a paired randomization test says the rise is unlikely under
"no difference" (p below `alpha`). Ties and noise revert: a stage that cannot show its
worth on dev is not allowed to change the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    if kept:
        reason = f"dev improved by {delta:+.4f} (p={p:.3f} < {alpha})"
    elif delta <= 0:
        reason = f"dev did not improve ({delta:+.4f}); reverted"
    else:
        reason = f"dev rose {delta:+.4f} but p={p:.3f} >= {alpha}: not shown; reverted"
    return Decision(kept=kept, before=mean_b, after=mean_a, delta=delta, p_value=p, n=len(ids), reason=reason)
