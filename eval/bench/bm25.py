"""Queries/s of ragsys BM25 against rank_bm25 and bm25s, single-threaded, in one run.

    .venv/bin/python eval/bench/bm25.py [--docs 100000] [--rounds 5]

All three libraries get the same pre-tokenized corpus and queries (ragsys' default
tokenizer) and return the top 10. Two corpora: SciFact (5,183 abstracts, all 1,109 claims)
and a seeded synthetic corpus with a Zipfian vocabulary. rank_bm25 loops in Python over every
document per query term, so it is timed on a subset of queries and normalized to queries/s.
ragsys and bm25s are each timed with both of their backends, numba (JIT, warmed up before
timing; what both pick when numba is installed) and numpy. Contenders are timed in interleaved
rounds and the best round is kept, since the machine may be shared.

Keys: `ragsys_{variant}_qps` is the numba backend through `search_many`, `ragsys_numpy_{variant}_qps`
the numpy one; `ragsys_qps` / `ragsys_numpy_qps` are the default variant (bm25+);
`ragsys_single_qps` calls `search` once per query. `bm25s_qps` is bm25s' numba backend (lucene),
`bm25s_numpy_qps` its numpy one. `numba_compile_s` is the first kernel call (JIT compile).
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: every library runs on one thread
os.environ.setdefault("DISABLE_TQDM", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from ragsys.retrieve.bm25 import BM25Config  # noqa: E402
from ragsys.retrieve.bm25_index import BM25Index  # noqa: E402
from ragsys.retrieve.tokenize import Tokenizer, TokenizerConfig  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"
K = 10
Tokens = list[list[str]]
Run = tuple[Callable[[], object], int]  # (run all its queries once, how many queries)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def scifact_tokens(data: Path) -> tuple[Tokens, Tokens]:
    """SciFact docs as title + " " + text, and all claims, through the default tokenizer."""
    tokenizer = Tokenizer(TokenizerConfig())
    with (data / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    with (data / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f]
    corpus = tokenizer.tokenize_many(d["title"] + " " + d["text"] for d in docs)
    return corpus, tokenizer.tokenize_many(queries)


def synthetic_tokens(n_docs: int, n_queries: int, seed: int = 0) -> tuple[Tokens, Tokens]:
    """Zipf(1.1) term ranks over a 500k vocabulary, doc lengths ~ Poisson(120). Query terms
    (3-8 per query) skip the 50 most frequent ranks, as a stopword list would."""
    rng = np.random.default_rng(seed)
    vocab_size = 500_000
    names = [f"t{i}" for i in range(vocab_size)]
    lengths = rng.poisson(120, n_docs)
    ranks = rng.zipf(1.1, int(lengths.sum()))
    ranks = np.where(ranks > vocab_size, (ranks % vocab_size) + 1, ranks) - 1
    cut = np.cumsum(lengths)[:-1]
    corpus = [[names[r] for r in doc.tolist()] for doc in np.split(ranks, cut)]
    queries = []
    for size in rng.integers(3, 9, n_queries).tolist():
        qr = rng.zipf(1.1, 4 * size)
        qr = qr[(qr > 50) & (qr <= vocab_size)][:size] - 1
        queries.append([names[r] for r in qr.tolist()])
    return corpus, queries


def numba_compile_s() -> float:
    """Seconds of the first numba kernel call in this process: the JIT compile."""
    scorer = BM25Config().build_scorer(BM25Index.build([["a", "b"], ["b"]]), "numba")
    start = time.perf_counter()
    scorer.search(["a"], K)
    return time.perf_counter() - start


def ragsys_runs(corpus: Tokens, queries: Tokens) -> tuple[dict[str, Run], float]:
    start = time.perf_counter()
    index = BM25Index.build(corpus)
    index_s = time.perf_counter() - start
    runs: dict[str, Run] = {}
    for backend, prefix in (("numba", "ragsys_"), ("numpy", "ragsys_numpy_")):
        for variant in ("okapi", "lucene", "bm25+"):
            scorer = BM25Config(variant=variant).build_scorer(index, backend)
            assert scorer.backend == backend, f"{backend} backend unavailable"
            runs[prefix + variant] = (lambda s=scorer: s.search_many(queries, K)), len(queries)
    default = BM25Config().build_scorer(index, "numba")
    one = queries[: max(1, len(queries) // 4)]
    runs["ragsys_single"] = (lambda: [default.search(q, K) for q in one]), len(one)
    return runs, index_s


def rank_bm25_run(corpus: Tokens, queries: Tokens) -> Run:
    from rank_bm25 import BM25Okapi

    model = BM25Okapi(corpus)

    def run() -> None:
        for q in queries:
            scores = model.get_scores(q)
            top = np.argpartition(-scores, K)[:K]
            top[np.argsort(-scores[top], kind="stable")]

    return run, len(queries)


def bm25s_run(corpus: Tokens, queries: Tokens, backend: str) -> Run:
    import bm25s

    model = bm25s.BM25(method="lucene", backend=backend)
    model.index(corpus, show_progress=False)
    model.retrieve(queries[:20], k=K, n_threads=0, show_progress=False)  # numba compiles here
    return (lambda: model.retrieve(queries, k=K, n_threads=0, show_progress=False)), len(queries)


def time_interleaved(runs: dict[str, Run], rounds: int) -> dict[str, float]:
    """Best queries/s over `rounds`; every round times every contender once, so a burst of
    load from other processes on this shared machine hits them all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for r in range(rounds):
        for name, (run, _) in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {runs[n][1] / t:.0f}" for n, t in best.items()))
    return {f"{name}_qps": runs[name][1] / t for name, t in best.items()}


def bench_corpus(corpus: Tokens, queries: Tokens, rank_subset: int, rounds: int) -> dict[str, float]:
    runs, index_s = ragsys_runs(corpus, queries)
    runs["rank_bm25"] = rank_bm25_run(corpus, queries[:rank_subset])
    runs["bm25s"] = bm25s_run(corpus, queries, "numba")
    runs["bm25s_numpy"] = bm25s_run(corpus, queries, "numpy")
    out = {"ragsys_index_s": index_s, **time_interleaved(runs, rounds)}
    out["ragsys_qps"] = out[f"ragsys_{BM25Config().variant}_qps"]
    out["ragsys_numpy_qps"] = out[f"ragsys_numpy_{BM25Config().variant}_qps"]
    out["ratio_okapi_vs_rank_bm25"] = out["ragsys_okapi_qps"] / out["rank_bm25_qps"]
    out["ratio_numpy_okapi_vs_rank_bm25"] = out["ragsys_numpy_okapi_qps"] / out["rank_bm25_qps"]
    for ours in ("lucene", "numpy_lucene"):  # same formula as bm25s' "lucene"
        out[f"ratio_{ours}_vs_bm25s"] = out[f"ragsys_{ours}_qps"] / out["bm25s_qps"]
        out[f"ratio_{ours}_vs_bm25s_numpy"] = out[f"ragsys_{ours}_qps"] / out["bm25s_numpy_qps"]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    parser.add_argument("--queries", type=int, default=1_000, help="synthetic queries")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {args.data}: pass --data DIR (the folder with corpus.jsonl)")

    compile_s = numba_compile_s()
    log(f"numba kernel compiled in {compile_s:.2f} s")
    log("SciFact: tokenizing")
    corpus, queries = scifact_tokens(args.data)
    log(f"SciFact: {len(corpus)} docs, {len(queries)} queries")
    result: dict[str, Any] = bench_corpus(corpus, queries, rank_subset=50, rounds=args.rounds)
    log(f"synthetic: generating {args.docs} docs (seed 0)")
    corpus, queries = synthetic_tokens(args.docs, args.queries)
    synthetic = bench_corpus(corpus, queries, rank_subset=5, rounds=args.rounds)
    result.update({f"synthetic_{key}": value for key, value in synthetic.items()})
    result.update(
        synthetic_docs=args.docs,
        synthetic_queries=args.queries,
        k=K,
        seed=0,
        threads=1,
        bm25s_qps_backend="numba",
        numba_compile_s=compile_s,
        machine=platform.processor() or platform.machine(),
    )
    print(json.dumps({key: round(v, 4) if isinstance(v, float) else v for key, v in result.items()}))


if __name__ == "__main__":
    main()
