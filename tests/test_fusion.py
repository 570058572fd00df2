"""Fusion math on hand-made runs, and the learned mixture on toy sets with a known answer."""

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
from ragsys.train.mixture import MixtureFit, fit_mixture
from ragsys.types import Chunk, Hit


def hit(chunk_id: str, score: float = 0.0, doc: str | None = None) -> Hit:
    chunk = Chunk(
        id=chunk_id, doc_id=doc or chunk_id, source="s", text=chunk_id,
        page_start=1, page_end=1, start=0, end=1, hash="h",
    )  # fmt: skip
    return Hit(chunk=chunk, score=score, source="bm25")


def ranked(ids: list[str]) -> list[Hit]:
    """A run listing `ids` best first, with descending distinct scores."""
    return [hit(c, float(len(ids) - i)) for i, c in enumerate(ids)]


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


# --- learned mixture ---------------------------------------------------------------------------


def perfect_vs_adversarial(n_queries: int = 12) -> tuple[list[list[list[Hit]]], list[dict[str, int]]]:
    """A ranks the relevant doc first; B ranks it last, below the same 30 distractors."""
    runs, qrels = [], []
    for q in range(n_queries):
        rel, noise = f"q{q}-rel", [f"q{q}-n{i:02d}" for i in range(30)]
        runs.append([ranked([rel, *noise]), ranked([*noise, rel])])
        qrels.append({rel: 1})
    return runs, qrels


def test_mixture_puts_the_weight_on_a_perfect_retriever() -> None:
    runs, qrels = perfect_vs_adversarial()
    fit = fit_mixture(runs, qrels)
    assert fit.ndcg_at_10 == pytest.approx(1.0)
    assert fit.config.weights is not None and fit.config.weights[0] >= 0.9
    assert fit.config.fuse(runs[0])[0].chunk.id == "q0-rel"


def test_mixture_finds_the_combination_that_recovers_both_relevant_docs() -> None:
    runs, qrels = [], []
    for q in range(8):  # each retriever finds one relevant doc first and misses the other
        r1, r2 = f"q{q}-r1", f"q{q}-r2"
        runs.append(
            [
                ranked([r1, *[f"q{q}-a{i}" for i in range(15)]]),
                ranked([r2, *[f"q{q}-b{i}" for i in range(15)]]),
            ]
        )
        qrels.append({r1: 1, r2: 1})
    fit = fit_mixture(runs, qrels)
    assert fit.ndcg_at_10 == pytest.approx(1.0)
    assert fit.config.weights == (0.5, 0.5)
    single = [c.ndcg_at_10 for c in fit.candidates if c.config.weights in {(1.0, 0.0), (0.0, 1.0)}]
    assert max(single) < 0.7  # either retriever alone finds one of two relevant docs


def test_mixture_scores_docs_once_keeping_their_best_chunk() -> None:
    run = [hit("x1", 3, doc="X"), hit("x2", 2, doc="X"), hit("y1", 1, doc="Y")]
    fit = fit_mixture([[run]], [{"X": 1, "Y": 1}])
    assert fit.ndcg_at_10 == pytest.approx(1.0)  # X then Y: both relevant docs at ranks 1 and 2


def test_mixture_searches_every_family_and_the_whole_simplex_grid() -> None:
    runs, qrels = perfect_vs_adversarial(3)
    fit = fit_mixture(runs, qrels, rrf_ks=(10, 60), norms=("minmax", "zscore"))
    assert len(fit.candidates) == 4 * 11
    assert {c.config.kind for c in fit.candidates} == {"rrf", "convex"}
    assert all(sum(c.config.weights or ()) == pytest.approx(1.0) for c in fit.candidates)
    assert fit.ndcg_at_10 == max(c.ndcg_at_10 for c in fit.candidates)


def test_mixture_with_four_retrievers_uses_coordinate_ascent_deterministically() -> None:
    base, qrels = perfect_vs_adversarial(6)
    runs = [[b, b, a, b] for a, b in base]  # the perfect retriever is third, among adversaries
    fits = [fit_mixture(runs, qrels, seed=3) for _ in range(2)]
    assert fits[0] == fits[1]
    weights = fits[0].config.weights
    assert fits[0].ndcg_at_10 == pytest.approx(1.0) and weights is not None
    assert int(np.argmax(weights)) == 2 and sum(weights) == pytest.approx(1.0, abs=1e-5)


def test_mixture_drops_queries_without_relevant_docs() -> None:
    runs, qrels = perfect_vs_adversarial(4)
    qrels[1], qrels[2] = {}, {"q2-rel": 0}
    fit: MixtureFit = fit_mixture(runs, qrels)
    assert fit.n_queries == 2 and fit.ndcg_at_10 == pytest.approx(1.0)


def test_mixture_refuses_inconsistent_input() -> None:
    runs, qrels = perfect_vs_adversarial(2)
    with pytest.raises(ValueError, match="qrels for 1"):
        fit_mixture(runs, qrels[:1])
    with pytest.raises(ValueError, match="same, non-zero number of runs"):
        fit_mixture([runs[0], runs[1][:1]], qrels)
    with pytest.raises(ValueError, match="grade > 0"):
        fit_mixture(runs, [{}, {}])


def ndcg_via_public_fusion(
    config: RRFConfig | ConvexConfig, runs: list[list[list[Hit]]], qrels: list[dict[str, int]]
) -> float:
    """The slow, obvious path: fuse with the config, keep each doc's best chunk, ir_measures."""
    import ir_measures
    from ir_measures import nDCG

    run: dict[str, dict[str, float]] = {}
    for q, query_runs in enumerate(runs):
        docs: list[str] = []
        for h in config.fuse(query_runs):
            if h.chunk.doc_id not in docs:
                docs.append(h.chunk.doc_id)
        run[str(q)] = {d: float(len(docs) - i) for i, d in enumerate(docs)}
    qrels_by_id = {str(q): g for q, g in enumerate(qrels)}
    return float(ir_measures.calc_aggregate([nDCG @ 10], qrels_by_id, run)[nDCG @ 10])


def test_every_candidate_scores_as_the_public_fusion_functions_do() -> None:
    rng = np.random.default_rng(0)
    runs, qrels = [], []
    for q in range(15):
        pool = [f"q{q}-d{i}" for i in range(30)]
        qrels.append({d: int(rng.integers(1, 3)) for d in rng.choice(pool, 3, replace=False)})
        query_runs = []
        for _ in range(3):
            picked = rng.choice(pool, int(rng.integers(5, 20)), replace=False)
            scores = np.round(rng.normal(size=len(picked)), 1)  # coarse scores: ties happen
            order = np.argsort(-scores, kind="stable")
            part = rng.integers(0, 2, size=len(picked))  # docs have two chunks; runs share some
            query_runs.append(
                [hit(f"{picked[i]}#{part[i]}", float(scores[i]), str(picked[i])) for i in order]
            )
        runs.append(query_runs)
    fit = fit_mixture(runs, qrels, rrf_ks=(1, 60), grid_steps=4)
    for candidate in fit.candidates:
        assert candidate.ndcg_at_10 == pytest.approx(
            ndcg_via_public_fusion(candidate.config, runs, qrels), abs=1e-9
        )
