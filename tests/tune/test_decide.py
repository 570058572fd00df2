"""Keep or revert: a stage is kept only on a shown improvement, closed-set answers on macro-F1."""

from __future__ import annotations

import pytest

from ragsys.tune.decide import decide, decide_labels


def test_decide_keeps_only_a_shown_improvement() -> None:
    ids = [f"q{i}" for i in range(40)]
    before = {q: 0.5 for q in ids}
    better = {q: 0.5 + (0.2 if i % 4 else 0.0) for i, q in enumerate(ids)}
    assert decide(before, better).kept
    worse = {q: 0.4 for q in ids}
    assert not decide(before, worse).kept and "did not improve" in decide(before, worse).reason
    noisy = {q: 0.5 + (0.3 if i == 0 else 0.0) for i, q in enumerate(ids)}  # one lucky question
    d = decide(before, noisy)
    assert d.delta > 0 and not d.kept and "not shown" in d.reason
    assert not decide(before, before).kept


def _collapse_case() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """gold 60 yes / 20 no / 10 maybe; `before` gets every no and maybe right but only 10 yes
    (the rest "maybe"); `after` answers "yes" to everything: accuracy 0.44 -> 0.67."""
    gold = {f"q{i:02d}": "yes" if i < 60 else "no" if i < 80 else "maybe" for i in range(90)}
    before = {q: (g if g != "yes" or i < 10 else "maybe") for i, (q, g) in enumerate(gold.items())}
    return gold, before, {q: "yes" for q in gold}


def test_closed_set_answers_are_judged_on_macro_f1_so_a_majority_collapse_is_reverted() -> None:
    gold, before, after = _collapse_case()
    correct = {q: float(before[q] == g) for q, g in gold.items()}
    collapsed = {q: float(after[q] == g) for q, g in gold.items()}
    assert decide(correct, collapsed).kept  # on accuracy the collapse looks like a shown gain
    d = decide_labels(before, after, gold)
    assert not d.kept and d.statistic == "macro_f1" and d.delta < 0
    assert d.before == pytest.approx((20 / 70 + 1.0 + 20 / 70) / 3) and d.after == pytest.approx(0.8 / 3)
    assert "accuracy 0.444 -> 0.667" in d.reason and "answers yes 90, no 0, maybe 0" in d.reason
    # a real gain is kept: the yes questions it missed are now right, the rest unchanged
    fixed = {q: (g if g == "yes" else before[q]) for q, g in gold.items()}
    kept = decide_labels(before, fixed, gold)
    assert kept.kept and kept.delta > 0 and kept.p_value < 0.01
    assert decide_labels(before, before, gold).p_value == 1.0 and not decide_labels(before, before, gold).kept
    with pytest.raises(ValueError, match="no dev question"):
        decide_labels({}, after, gold)


def test_every_decision_states_the_smallest_gain_it_could_detect() -> None:
    def noisy(n: int) -> tuple[dict[str, float], dict[str, float]]:
        ids = [f"q{i}" for i in range(n)]
        return {q: 0.5 for q in ids}, {q: 0.5 + (0.3 if i % 2 else -0.3) for i, q in enumerate(ids)}

    small, large = decide(*noisy(20)), decide(*noisy(80))
    assert small.mde is not None and large.mde is not None
    # the paired differences have sd 0.3: mde = (z_0.95 + z_0.8) * 0.3 / sqrt(n) at alpha 0.1
    assert small.mde == pytest.approx((1.6449 + 0.8416) * 0.3 * (20 / 19) ** 0.5 / 20**0.5, rel=1e-3)
    assert large.mde == pytest.approx(small.mde / 2, rel=0.05)  # four times the questions, half the effect
    assert "smallest gain detectable at 80% power" in small.reason
    assert decide({"q": 0.5}, {"q": 0.9}).mde is None  # one question: no power to state
    gold, before, after = _collapse_case()
    labels = decide_labels(before, after, gold, n_resamples=2000)
    assert labels.mde is not None and 0 < labels.mde < 1 and "detectable" in labels.reason
