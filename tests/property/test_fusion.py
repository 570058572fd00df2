"""Properties of RRF and convex fusion over generated runs (hits on a small id alphabet, so
runs overlap and repeat ids; scores include exact ties).

What the module promises and these tests hold it to: fusion is a weighted sum over runs, so
the order of the runs (weights permuted with them) changes no fused score and no order; ties
break by chunk id; scaling every weight by two scales every score by two and keeps the order;
an empty run (or no run at all) changes nothing. Only the *hit* carried for a chunk depends
on run order (the first hit, in run order, by contract), so runs are compared by (id, score).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ragsys.fusion import convex_fusion, reciprocal_rank_fusion
from ragsys.types import Hit
from tests.fixtures.runs import hit

PROFILE = settings.get_profile("property")

Fuse = Callable[[Sequence[Sequence[Hit]], Sequence[float] | None], list[Hit]]
METHODS: dict[str, Fuse] = {
    "rrf": lambda runs, w: reciprocal_rank_fusion(runs, 60, w),
    "rrf-k0": lambda runs, w: reciprocal_rank_fusion(runs, 0, w),
    "minmax": lambda runs, w: convex_fusion(runs, w, "minmax"),
    "zscore": lambda runs, w: convex_fusion(runs, w, "zscore"),
}
METHOD = st.sampled_from(sorted(METHODS))

# Few distinct scores, so ties within and across runs are common.
SCORE = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.25, -1.0]) | st.floats(-50, 50, allow_nan=False)
RUN = st.lists(st.tuples(st.sampled_from("abcdefg"), SCORE), max_size=8).map(
    lambda pairs: [
        hit(c, s) for c, s in sorted(pairs, key=lambda p: -p[1])
    ]  # best first, as retrievers return
)
RUNS = st.lists(RUN, min_size=1, max_size=4)
WEIGHT = st.sampled_from([0.25, 0.5, 1.0, 3.0]) | st.floats(0.01, 10)


def pairs(hits: list[Hit]) -> list[tuple[str, float]]:
    return [(h.chunk.id, h.score) for h in hits]


@settings(PROFILE, max_examples=80)
@given(method=METHOD, runs=RUNS, data=st.data())
def test_the_order_of_the_runs_changes_nothing(
    method: str, runs: list[list[Hit]], data: st.DataObject
) -> None:
    weights = data.draw(st.lists(WEIGHT, min_size=len(runs), max_size=len(runs)))
    order = data.draw(st.permutations(range(len(runs))))
    fuse = METHODS[method]
    permuted = fuse([runs[i] for i in order], [weights[i] for i in order])
    assert pairs(permuted) == pairs(fuse(runs, weights))


@settings(PROFILE, max_examples=80)
@given(method=METHOD, runs=RUNS, data=st.data())
def test_scores_descend_and_ties_break_by_id(method: str, runs: list[list[Hit]], data: st.DataObject) -> None:
    weights = data.draw(st.none() | st.lists(WEIGHT, min_size=len(runs), max_size=len(runs)))
    fused = METHODS[method](runs, weights)
    assert sorted({h.chunk.id for run in runs for h in run}) == sorted(h.chunk.id for h in fused)
    keys = [(-h.score, h.chunk.id) for h in fused]
    assert keys == sorted(keys)
    assert pairs(fused) == pairs(METHODS[method](runs, weights))  # and the same on every call


@settings(PROFILE, max_examples=80)
@given(method=METHOD, runs=RUNS, data=st.data())
def test_doubling_every_weight_doubles_every_score(
    method: str, runs: list[list[Hit]], data: st.DataObject
) -> None:
    weights = data.draw(st.lists(WEIGHT, min_size=len(runs), max_size=len(runs)))
    fuse = METHODS[method]
    once, twice = fuse(runs, weights), fuse(runs, [2 * w for w in weights])
    assert pairs(twice) == [(c, 2 * s) for c, s in pairs(once)]  # exact: scaling by 2 rounds nothing


@settings(PROFILE, max_examples=60)
@given(method=METHOD, runs=RUNS, data=st.data())
def test_a_zero_weight_run_changes_no_score_nor_the_order_of_the_others(
    method: str, runs: list[list[Hit]], data: st.DataObject
) -> None:
    """A zero-weight run's own chunks still appear (with what a missing chunk scores: 0 for RRF
    and minmax; see `normalize`), but every chunk the weighted runs returned keeps its score,
    so their relative order is unchanged. `ragsys.train.mixture` scores candidates the same way."""
    weights = data.draw(st.lists(WEIGHT, min_size=len(runs), max_size=len(runs)))
    ignored = data.draw(RUN)
    at = data.draw(st.integers(0, len(runs)))
    fuse = METHODS[method]
    base = pairs(fuse(runs, weights))
    with_ignored = fuse([*runs[:at], ignored, *runs[at:]], [*weights[:at], 0.0, *weights[at:]])
    kept = {c for c, _ in base}
    assert [(c, s) for c, s in pairs(with_ignored) if c in kept] == base
    if method.startswith("rrf"):  # RRF scores are positive: the ignored run's chunks come last
        assert all(s == 0.0 for c, s in pairs(with_ignored)[len(base) :])


@settings(PROFILE, max_examples=60)
@given(method=METHOD, runs=RUNS, data=st.data())
def test_an_empty_run_changes_nothing(method: str, runs: list[list[Hit]], data: st.DataObject) -> None:
    weights = data.draw(st.lists(WEIGHT, min_size=len(runs), max_size=len(runs)))
    at, w = data.draw(st.integers(0, len(runs))), data.draw(WEIGHT)
    fuse = METHODS[method]
    with_empty = fuse([*runs[:at], [], *runs[at:]], [*weights[:at], w, *weights[at:]])
    assert pairs(with_empty) == pairs(fuse(runs, weights))


def test_no_runs_and_only_empty_runs_fuse_to_nothing() -> None:
    for fuse in METHODS.values():
        assert fuse([], None) == []
        assert fuse([[], []], None) == []
        assert fuse([[]], [1.0]) == []
