"""Speed of `fit_mixture` on a synthetic dev set: 200 queries, 3 retrievers x 100 hits.

The runs are synthetic (seeded): each query has a pool of 300 docs of two chunks each and 1-3
graded relevant docs; each retriever scores the pool as relevance plus its own noise (one
good, one mediocre, one poor, on different score scales) and returns its top 100 chunks. The
peer, in the same run, is the obvious path for one candidate: fuse every query with the public
`RRFConfig.fuse`, keep each doc's best chunk, score with ir_measures. The fit's best nDCG@10 is
checked against that path for the chosen config.

Usage: .venv/bin/python eval/bench/fusion_fit.py [--queries 200] [--hits 100]
Prints progress to stderr and one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ir_measures
import numpy as np
from ir_measures import nDCG

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ragsys.fusion import ConvexConfig, RRFConfig  # noqa: E402
from ragsys.train.mixture import fit_mixture  # noqa: E402
from ragsys.types import Chunk, Hit  # noqa: E402

Runs = list[list[list[Hit]]]
Qrels = list[dict[str, int]]
NOISE = ((0.6, 1.0), (1.2, 8.0), (2.5, 0.1))  # (noise std, score scale) per retriever


def synthetic(n_queries: int, n_hits: int, seed: int) -> tuple[Runs, Qrels]:
    rng = np.random.default_rng(seed)
    runs: Runs = []
    qrels: Qrels = []
    for q in range(n_queries):
        docs = [f"q{q}d{i}" for i in range(300)]
        grades = np.zeros(len(docs))
        relevant = rng.choice(len(docs), int(rng.integers(1, 4)), replace=False)
        grades[relevant] = rng.integers(1, 3, size=len(relevant))
        qrels.append({docs[i]: int(grades[i]) for i in relevant})
        chunks = [(d, part) for d in range(len(docs)) for part in (0, 1)]
        query_runs = []
        for noise, scale in NOISE:
            scores = scale * (np.array([grades[d] for d, _ in chunks]) + rng.normal(0, noise, len(chunks)))
            top = np.argsort(-scores, kind="stable")[:n_hits]
            query_runs.append([hit(docs[chunks[i][0]], chunks[i][1], float(scores[i])) for i in top])
        runs.append(query_runs)
    return runs, qrels


def hit(doc: str, part: int, score: float) -> Hit:
    chunk = Chunk(
        id=f"{doc}#{part}", doc_id=doc, source=doc, text="", page_start=1, page_end=1, start=0, end=0, hash=""
    )
    return Hit(chunk=chunk, score=score, source="synthetic")


def ndcg_slow(config: RRFConfig | ConvexConfig, runs: Runs, qrels: Qrels) -> float:
    run: dict[str, dict[str, float]] = {}
    for q, query_runs in enumerate(runs):
        docs: dict[str, None] = {}
        for h in config.fuse(query_runs):
            docs.setdefault(h.chunk.doc_id)
        run[str(q)] = {d: float(len(docs) - i) for i, d in enumerate(docs)}
    qrels_by_id = {str(q): g for q, g in enumerate(qrels)}
    return float(ir_measures.calc_aggregate([nDCG @ 10], qrels_by_id, run)[nDCG @ 10])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    runs, qrels = synthetic(args.queries, args.hits, args.seed)
    print(f"built {args.queries} queries x 3 runs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    t0 = time.perf_counter()
    fit = fit_mixture(runs, qrels, seed=args.seed)
    fit_s = time.perf_counter() - t0
    print(f"fit_mixture: {len(fit.candidates)} candidates in {fit_s:.2f}s -> {fit.config}", file=sys.stderr)

    t0 = time.perf_counter()
    slow_best = ndcg_slow(fit.config, runs, qrels)
    slow_s = time.perf_counter() - t0
    print(f"public-fusion path, one candidate: {slow_s:.2f}s", file=sys.stderr)
    singles = {
        f"only_retriever_{r}": max(
            c.ndcg_at_10 for c in fit.candidates if c.config.weights and c.config.weights[r] == 1.0
        )
        for r in range(3)
    }
    rrf_equal = ndcg_slow(RRFConfig(k=60), runs, qrels)
    per_candidate = fit_s / len(fit.candidates)
    result = {
        "queries": args.queries,
        "retrievers": 3,
        "hits": args.hits,
        "seed": args.seed,
        "candidates": len(fit.candidates),
        "fit_s": round(fit_s, 3),
        "fit_ms_per_candidate": round(1000 * per_candidate, 2),
        "public_path_ms_per_candidate": round(1000 * slow_s, 1),
        "ratio_public_path_vs_fit_per_candidate": round(slow_s / per_candidate, 1),
        "best": fit.config.model_dump(),
        "best_ndcg_at_10": round(fit.ndcg_at_10, 4),
        "best_ndcg_at_10_public_path": round(slow_best, 4),
        "rrf_k60_equal_ndcg_at_10": round(rrf_equal, 4),
        **{k: round(v, 4) for k, v in singles.items()},
        "split": "synthetic (dev = the same queries; speed benchmark, not a quality claim)",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
