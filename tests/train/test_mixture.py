"""The learned mixture: fitting fusion weights on toy sets with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from ragsys.fusion import ConvexConfig, RRFConfig
from ragsys.train.mixture import MixtureFit, fit_mixture
from ragsys.types import Hit
from tests.fixtures.runs import hit, ranked


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
