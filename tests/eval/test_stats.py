from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ragsys.eval.stats import bootstrap_ci, paired_bootstrap_delta_ci, paired_randomization_test


def _values(n: int = 200, seed: int = 1) -> list[float]:
    return np.random.default_rng(seed).uniform(0, 1, n).tolist()


def test_bootstrap_is_deterministic_given_a_seed() -> None:
    x = _values()
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)


def test_bootstrap_ci_contains_the_mean_with_the_expected_width() -> None:
    x = _values()
    lo, hi = bootstrap_ci(x)
    assert lo < float(np.mean(x)) < hi
    half_width = 1.96 * float(np.std(x, ddof=1)) / np.sqrt(len(x))  # normal approximation
    assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.1)


def test_bootstrap_blocks_do_not_change_the_answer_shape() -> None:
    lo, hi = bootstrap_ci(_values(n=20_000), n_resamples=1000)  # several resampling blocks
    assert 0.49 < lo < hi < 0.51


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    assert bootstrap_ci([0.25] * 5) == (0.25, 0.25)


def test_identical_runs_give_p_of_one() -> None:
    x = _values()
    assert paired_randomization_test(x, x) == 1.0


def test_clearly_different_runs_give_small_p() -> None:
    a = _values()
    b = [v - 0.1 for v in a]
    p = paired_randomization_test(a, b, n_resamples=2000)
    assert p == pytest.approx(1 / 2001)


def test_noise_only_difference_gives_large_p() -> None:
    a, noise = _values(seed=1), np.random.default_rng(2).normal(0, 0.05, 200)
    b = (np.asarray(a) + noise - noise.mean()).tolist()  # same mean, different per-query values
    assert paired_randomization_test(a, b) > 0.5


def test_randomization_p_is_seeded_and_symmetric() -> None:
    a, b = _values(seed=3), _values(seed=4)
    assert paired_randomization_test(a, b, seed=5) == paired_randomization_test(b, a, seed=5)


def test_paired_delta_ci_brackets_the_mean_difference() -> None:
    a = _values()
    b = [v - 0.1 + 0.01 * np.sin(i) for i, v in enumerate(a)]
    lo, hi = paired_bootstrap_delta_ci(a, b)
    assert lo < float(np.mean(np.subtract(a, b))) < hi and lo > 0.09


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([]), "non-empty"),
        (lambda: bootstrap_ci([1.0, float("nan")]), "NaN"),
        (lambda: bootstrap_ci([1.0], alpha=1.5), "alpha"),
        (lambda: bootstrap_ci([1.0], n_resamples=0), "n_resamples"),
        (lambda: paired_randomization_test([1.0], [1.0, 2.0]), "same length"),
    ],
)
def test_bad_inputs_fail_clearly(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_paired_macro_f1_delta() -> None:
    from ragsys.eval.stats import paired_macro_f1_delta

    golds = ["yes"] * 12 + ["no"] * 6 + ["maybe"] * 2
    assert paired_macro_f1_delta(golds, golds, golds, n_resamples=200) == (0.0, 0.0, 0.0)
    always_yes = ["yes"] * len(golds)
    delta, lo, hi = paired_macro_f1_delta(golds, always_yes, golds, n_resamples=200)
    assert delta == pytest.approx(
        1.0 - (2 * 0.6 / 1.6) / 3
    )  # perfect vs yes-only (F1 0.75 on one class of 3)
    assert 0 < lo <= delta <= hi
    back, blo, bhi = paired_macro_f1_delta(always_yes, golds, golds, n_resamples=200)
    assert back == pytest.approx(-delta) and bhi < 0  # the sign follows the order
