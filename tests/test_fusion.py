"""Fusion math on hand-made runs: reciprocal rank, convex combinations, and their configs
(the learned mixture is fitted in tests/train/test_mixture.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from pydantic import TypeAdapter

from ragsys.fusion import (
    ConvexConfig,
    FusionConfig,
    RRFConfig,
    convex_fusion,
    normalize,
    reciprocal_rank_fusion,
)
from ragsys.types import Hit
from tests.fixtures.runs import hit, ranked


def ids(hits: list[Hit]) -> list[str]:
    return [h.chunk.id for h in hits]


# --- RRF ---------------------------------------------------------------------------------------


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([ranked(["a", "b", "c"]), ranked(["c", "a"])], k=60)
    assert ids(fused) == ["a", "c", "b"]
    assert [h.score for h in fused] == pytest.approx([1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62])
    assert {h.source for h in fused} == {"rrf"}


def test_rrf_ties_break_by_chunk_id_whatever_the_run_order() -> None:
    assert ids(reciprocal_rank_fusion([ranked(["y"]), ranked(["x"])])) == ["x", "y"]
    assert ids(reciprocal_rank_fusion([ranked(["x"]), ranked(["y"])])) == ["x", "y"]


def test_rrf_weights_scale_each_run() -> None:
    runs = [ranked(["a", "b"]), ranked(["b", "a"])]
    assert ids(reciprocal_rank_fusion(runs, weights=[0.7, 0.3])) == ["a", "b"]
    assert ids(reciprocal_rank_fusion(runs, weights=[0.3, 0.7])) == ["b", "a"]
    fused = reciprocal_rank_fusion(runs, k=0, weights=[2.0, 1.0])
    assert fused[0].score == pytest.approx(2 / 1 + 1 / 2)


def test_rrf_counts_a_chunk_listed_twice_in_one_run_once_at_its_best_rank() -> None:
    fused = reciprocal_rank_fusion([[hit("a", 3), hit("b", 2), hit("a", 1)]], k=60)
    assert [h.score for h in fused] == pytest.approx([1 / 61, 1 / 62])


def test_single_retriever_keeps_its_order_under_every_fusion() -> None:
    run = ranked(["d", "a", "c", "b"])
    assert ids(reciprocal_rank_fusion([run])) == ["d", "a", "c", "b"]
    assert ids(convex_fusion([run], norm="minmax")) == ["d", "a", "c", "b"]
    assert ids(convex_fusion([run], norm="zscore")) == ["d", "a", "c", "b"]


def test_an_empty_run_changes_no_order() -> None:
    run = ranked(["d", "a", "c"])
    assert ids(reciprocal_rank_fusion([run, []])) == ["d", "a", "c"]
    assert ids(convex_fusion([run, []], norm="minmax")) == ["d", "a", "c"]
    assert ids(convex_fusion([[], run], norm="zscore")) == ["d", "a", "c"]
    assert reciprocal_rank_fusion([[], []]) == []


def test_fused_hit_keeps_the_first_runs_chunk_and_copies_nothing_else() -> None:
    first = hit("a", 5.0)
    fused = reciprocal_rank_fusion([[first], [hit("a", 9.0)]])
    assert fused[0].chunk == first.chunk and first.source == "bm25"


# --- convex ------------------------------------------------------------------------------------


def test_convex_minmax_with_a_doc_missing_from_one_run() -> None:
    a = [hit("a", 3.0), hit("b", 2.0), hit("c", 1.0)]  # -> 1, 0.5, 0
    b = [hit("c", 10.0), hit("d", 0.0)]  # -> 1, 0; a and b missing -> 0
    fused = convex_fusion([a, b], weights=[0.5, 0.5], norm="minmax")
    assert ids(fused) == ["a", "c", "b", "d"]  # a and c tie at 0.5: id order
    assert [h.score for h in fused] == pytest.approx([0.5, 0.5, 0.25, 0.0])
    assert {h.source for h in fused} == {"convex"}


def test_convex_zscore_fills_missing_with_the_runs_lowest_z() -> None:
    a = [hit("a", 3.0), hit("b", 2.0), hit("c", 1.0)]
    b = [hit("b", 4.0), hit("d", 0.0)]
    za = (np.array([3.0, 2.0, 1.0]) - 2.0) / np.std([3.0, 2.0, 1.0])
    zb = np.array([1.0, -1.0])
    expected = {"a": za[0] + zb.min(), "b": za[1] + zb[0], "c": za[2] + zb.min(), "d": za.min() + zb[1]}
    fused = convex_fusion([a, b], weights=[1.0, 1.0], norm="zscore")
    assert {h.chunk.id: h.score for h in fused} == pytest.approx(expected)
    assert ids(fused) == sorted(expected, key=lambda c: -expected[c])


@pytest.mark.parametrize("norm", ["minmax", "zscore"])
def test_degenerate_runs_normalize_without_dividing_by_zero(norm: str) -> None:
    for scores in ([5.0], [2.0, 2.0, 2.0], []):
        values, missing = normalize(np.array(scores), norm)  # type: ignore[arg-type]
        assert np.all(np.isfinite(values)) and math.isfinite(missing) and values.shape == (len(scores),)
    fused = convex_fusion([[hit("a", 7.0)], ranked(["b", "a"])], norm=norm)  # type: ignore[arg-type]
    assert all(math.isfinite(h.score) for h in fused)


def test_minmax_constant_run_still_ranks_its_hits_above_missing_ones() -> None:
    fused = convex_fusion(
        [[hit("z", 2.0), hit("y", 2.0)], [hit("a", 1.0)]], weights=[0.6, 0.4], norm="minmax"
    )
    assert ids(fused) == ["y", "z", "a"]


# --- configs -----------------------------------------------------------------------------------


def test_configs_fuse_like_the_functions() -> None:
    runs = [ranked(["a", "b", "c"]), ranked(["c", "b"])]
    assert RRFConfig(k=10, weights=(0.2, 0.8)).fuse(runs) == reciprocal_rank_fusion(runs, 10, [0.2, 0.8])
    assert ConvexConfig(norm="zscore").fuse(runs) == convex_fusion(runs, None, "zscore")


@pytest.mark.parametrize("config", [RRFConfig(weights=(1.0,)), ConvexConfig(weights=(0.5, 0.2, 0.3))])
def test_weights_must_match_the_number_of_runs(config: RRFConfig | ConvexConfig) -> None:
    with pytest.raises(ValueError, match="one weight per retriever"):
        config.fuse([ranked(["a"]), ranked(["b"])])


def test_negative_or_all_zero_weights_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        reciprocal_rank_fusion([ranked(["a"]), ranked(["b"])], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="not all zero"):
        convex_fusion([ranked(["a"]), ranked(["b"])], weights=[0.0, 0.0])


def test_fusion_config_round_trips_through_yaml_by_kind() -> None:
    adapter: TypeAdapter[RRFConfig | ConvexConfig] = TypeAdapter(FusionConfig)
    for config in (RRFConfig(k=30, weights=(0.3, 0.7)), ConvexConfig(norm="zscore")):
        text = yaml.safe_dump(adapter.dump_python(config, mode="json"))
        assert adapter.validate_python(yaml.safe_load(text)) == config
