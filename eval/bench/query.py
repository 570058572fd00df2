"""Query latency on an index: retrieve + fuse, and the reranker's fast backend against fp32.

    .venv/bin/python eval/bench/query.py --index runs/scifact/index [--pipeline P] [--n 300]
        [--reranker PATH] [--rerank-queries 30] [--rerank-n 50] [--backend auto]

Retrieve + fuse: p50/p95 over `--n` SciFact queries of the pipeline's `search` (its dense
query encoder on the backend its config names), after a warm-up. Target p50 <= 20 ms.

Rerank: for `--rerank-queries` queries, the fused top-`--rerank-n` pairs are scored by raw
`CrossEncoder.predict` in fp32 (torch) and by ragsys's reranker on `--backend` (what "auto"
resolves to here); time per query (p50, fast first and fp32 second, alternating), and the
share of queries whose top-10 order is identical, the mean overlap of the two top-10 sets,
and (for queries with SciFact test qrels) nDCG@10 of both rankings, to tell reordered near-ties
from lost quality; the queries are SciFact test queries. Target: >= 3x faster with the same
top-10 on >= 95% of queries. Without `--reranker` (no trained cross-encoder ships offline) the
bundled MiniLM with a seeded, untrained one-logit head is saved once and used by both sides:
latency does not depend on training, and its near-random logits make the order check harsher
than a trained model's would be.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def seeded_reranker(folder: Path) -> Path:
    """MiniLM with a one-logit head drawn from a fixed seed, saved so both sides load the same weights."""
    import torch

    from ragsys.models import load_cross_encoder

    torch.manual_seed(0)
    load_cross_encoder("minilm", max_length=512, device="cpu").save_pretrained(str(folder))
    return folder


def ndcg10(ranked: list[str], gold: dict[str, int]) -> float:
    """Document-level nDCG@10 (a document counts at its first chunk's rank)."""
    docs = list(dict.fromkeys(ranked))[:10]
    dcg = sum(gold.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gold.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def judged_queries(path: Path, qrels: Path) -> list[tuple[str, dict[str, int]]]:
    """SciFact test queries with their judged documents, in qrels order."""
    texts = {q["_id"]: q["text"] for q in map(json.loads, path.read_text().splitlines())}
    gold: dict[str, dict[str, int]] = {}
    for row in list(csv.reader(qrels.open(encoding="utf-8"), delimiter="\t"))[1:]:
        gold.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2])
    return [(texts[q], g) for q, g in gold.items() if q in texts]


def rerank_compare(
    search: Any, queries: list[tuple[str, dict[str, int]]], model_path: str, args: argparse.Namespace
) -> dict[str, Any]:
    from ragsys.models import load_cross_encoder
    from ragsys.rerank import CrossEncoderConfig, raw_logits

    config = CrossEncoderConfig(model=model_path, top_n=args.rerank_n, backend=args.backend)
    fast = config.build()
    fp32 = load_cross_encoder(model_path, max_length=config.max_length, device="cpu")
    fast_s: list[float] = []
    raw_s: list[float] = []
    same, overlap, fast_ndcg, fp32_ndcg = 0, 0.0, 0.0, 0.0
    for i, (q, gold) in enumerate(queries):
        hits = search.search(q, args.rerank_n)
        pairs = [(q, h.chunk.text) for h in hits]
        t0 = time.perf_counter()
        ours = fast.rerank(q, hits, 10)
        t1 = time.perf_counter()
        scores = fp32.predict(
            pairs, batch_size=config.batch_size, show_progress_bar=False, activation_fn=raw_logits
        )
        t2 = time.perf_counter()
        fast_s.append(t1 - t0)
        raw_s.append(t2 - t1)
        order = sorted(range(len(hits)), key=lambda j: (-float(scores[j]), hits[j].chunk.id))[:10]
        ref = [hits[j] for j in order]
        same += [h.chunk.id for h in ours] == [h.chunk.id for h in ref]
        overlap += len({h.chunk.id for h in ours} & {h.chunk.id for h in ref}) / max(len(ref), 1)
        fast_ndcg += ndcg10([h.chunk.doc_id for h in ours], gold)
        fp32_ndcg += ndcg10([h.chunk.doc_id for h in ref], gold)
        if (i + 1) % 10 == 0:
            print(f"rerank: {i + 1}/{len(queries)}", flush=True, file=__import__("sys").stderr)
    return {
        "rerank_backend": fast.backend,
        "rerank_top_n": args.rerank_n,
        "rerank_queries": len(queries),
        "rerank_fast_p50_s": round(statistics.median(fast_s), 4),
        "rerank_fp32_p50_s": round(statistics.median(raw_s), 4),
        "rerank_speedup": round(statistics.median(raw_s) / statistics.median(fast_s), 3),
        "rerank_same_top10": round(same / len(queries), 3),
        "rerank_top10_overlap": round(overlap / len(queries), 3),
        "rerank_ndcg10_fast": round(fast_ndcg / len(queries), 4),
        "rerank_ndcg10_fp32": round(fp32_ndcg / len(queries), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/scifact/queries.jsonl")
    ap.add_argument("--qrels", type=Path, default=ROOT.parent / "shared/data/scifact/qrels/test.tsv")
    ap.add_argument("--pipeline", default=None)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument(
        "--reranker", default=None, help="a trained cross-encoder folder (default: seeded MiniLM)"
    )
    ap.add_argument("--rerank-queries", type=int, default=30)
    ap.add_argument("--rerank-n", type=int, default=50)
    ap.add_argument("--backend", default="auto", help="the reranker's CrossEncoderConfig.backend")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline

    queries = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()]
    config = load_pipeline(args.pipeline)
    search = config.build(Index.open(args.index))
    for q in queries[:5]:  # warm-up: first calls pay lazy initialisation
        search.search(q, 10)
    lat: list[float] = []
    for q in queries[: args.n]:
        t0 = time.perf_counter()
        search.search(q, 10)
        lat.append((time.perf_counter() - t0) * 1000)
    result: dict[str, Any] = {
        "index": str(args.index),
        "pipeline": config.name,
        "queries": len(lat),
        "threads": torch.get_num_threads(),
        "retrieve_fuse_p50_ms": round(percentile(lat, 0.5), 2),
        "retrieve_fuse_p95_ms": round(percentile(lat, 0.95), 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.reranker or str(seeded_reranker(Path(tmp) / "reranker"))
        judged = judged_queries(args.queries, args.qrels)[: args.rerank_queries]
        result |= rerank_compare(search, judged, model_path, args)
    result["targets"] = {
        "retrieve_fuse_p50_ms<=20": result["retrieve_fuse_p50_ms"] <= 20,
        "rerank_speedup>=3": result["rerank_speedup"] >= 3,
        "rerank_same_top10>=0.95": result["rerank_same_top10"] >= 0.95,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
