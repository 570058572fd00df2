"""Chunks/s of `ragsys index`'s embedding stage against torch fp32, and the quality it keeps.

    .venv/bin/python eval/bench/embed.py [--docs 1000] [--repeats 2] [--backend auto] [--no-quality]

Speed: SciFact abstracts (title + " " + text) are chunked as `ragsys index` chunks them (at
most 256 MiniLM tokens), and the first `--docs` chunk texts are embedded by (a) plain
`SentenceTransformer.encode` in fp32 (max_seq_length 256, batch 64) and (b) the encoder the
index writer builds (`DenseConfig(backend=...).build_encoder("passage")`, the backend "auto"
resolves to here), longest first as the writer orders them. Runs alternate which side goes
first and each reports its best of `--repeats`; exporting the fast copy happens before timing
(it is cached by weight digest and happens once per model).

Quality: the whole corpus is indexed twice with `pipelines/dense.py`'s retriever, once with
backend "torch" (fp32) and once with the fast backend, and SciFact test nDCG@10 (300 queries)
is scored on each with ragsys's own retrieval eval. Target: the fast backend >= 3x fp32 and
within 0.005 nDCG@10. Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import cpu_environment, log  # noqa: E402

from ragsys.chunk.chunker import ChunkConfig  # noqa: E402
from ragsys.eval.convert import convert_beir  # noqa: E402
from ragsys.eval.retrieval import score_retrieval, search_all  # noqa: E402
from ragsys.index.build import index_paths  # noqa: E402
from ragsys.index.corpus import read_beir_corpus  # noqa: E402
from ragsys.index.reader import Index  # noqa: E402
from ragsys.models import load_sentence_transformer  # noqa: E402
from ragsys.pipeline import PipelineConfig  # noqa: E402
from ragsys.retrieve.dense import DenseConfig  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"
BATCH = 64
MAX_TOKENS = 256


def chunk_texts(n: int) -> list[str]:
    """The first n chunks ragsys makes of the corpus, longest first (the writer's order)."""
    chunker = ChunkConfig().build()
    texts: list[str] = []
    for doc in read_beir_corpus(DATA / "corpus.jsonl")[0]:
        texts.extend(c.text for c in chunker.split(doc))
        if len(texts) >= n:
            break
    return sorted(texts[:n], key=lambda t: -len(t))


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def speed(n: int, repeats: int, backend: str) -> dict[str, object]:
    texts = chunk_texts(n)
    fp32 = load_sentence_transformer("minilm", device="cpu", max_seq_length=MAX_TOKENS)
    fast = DenseConfig(backend=backend, batch_size=BATCH).build_encoder("passage")  # exports once
    runs: dict[str, Callable[[], object]] = {
        "torch_fp32": lambda: fp32.encode(texts, batch_size=BATCH, show_progress_bar=False),
        "ragsys": lambda: fast.encode(texts),
    }
    log(f"{len(texts)} chunks; ragsys backend {fast.backend}; torch threads {torch.get_num_threads()}")
    ref = np.asarray(fp32.encode(texts[:BATCH], batch_size=BATCH, show_progress_bar=False))
    cosine = float((ref * fast.encode(texts[:BATCH])).sum(axis=1).min())  # both unit-normalized
    best = dict.fromkeys(runs, float("inf"))
    for i in range(repeats):
        for name in list(runs) if i % 2 == 0 else list(reversed(runs)):
            best[name] = min(best[name], timed(runs[name]))
        fp32_s, fast_s = best["torch_fp32"], best["ragsys"]
        log(f"repeat {i + 1}/{repeats}: best torch fp32 {fp32_s:.1f} s, ragsys {fast_s:.1f} s")
    return {
        "chunks": len(texts),
        "backend": fast.backend,
        "ragsys_chunks_per_s": round(len(texts) / best["ragsys"], 2),
        "torch_fp32_chunks_per_s": round(len(texts) / best["torch_fp32"], 2),
        "ratio": round(best["torch_fp32"] / best["ragsys"], 3),
        "min_cosine_first_batch": round(cosine, 6),
    }


def ndcg10(backend: str, workdir: Path) -> tuple[float, float]:
    """SciFact test nDCG@10 of the dense pipeline whose encoder runs on `backend`, and the
    chunks/s of its index's embedding stage."""
    config = PipelineConfig(name="dense", retrievers=(DenseConfig(backend=backend, query_backend=backend),))
    index_dir = workdir / f"index-{backend}"
    log(f"indexing the corpus with backend {backend} ...")
    summary = index_paths([DATA / "corpus.jsonl"], index_dir, config.index_spec())
    embed_rate = summary.chunks_embedded / max(summary.timings.get("embed", 0.0), 1e-9)
    items = [it for it in convert_beir(DATA) if it.split == "test"]
    pipeline = config.build(Index.open(index_dir))
    _, per_query = score_retrieval(items, search_all(pipeline, [it.question for it in items]))
    value = float(np.mean([m["ndcg@10"] for m in per_query.values()]))
    log(f"backend {backend}: nDCG@10 {value:.4f}, embedding stage {embed_rate:.1f} chunks/s")
    return value, embed_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="chunks in the speed comparison")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backend", default="auto", help="the DenseConfig backend to measure")
    parser.add_argument("--no-quality", action="store_true", help="skip the two full-corpus nDCG runs")
    args = parser.parse_args()
    if not (DATA / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {DATA}; see shared/data/README.md")
    result: dict[str, object] = {"bench": "embed", "model": "minilm", "batch_size": BATCH}
    result |= speed(args.docs, args.repeats, args.backend)
    if not args.no_quality:
        with tempfile.TemporaryDirectory() as tmp:
            fp32, fp32_rate = ndcg10("torch", Path(tmp))
            fast, fast_rate = ndcg10(args.backend, Path(tmp))
        result |= {
            "ndcg10_fp32": round(fp32, 4),
            "ndcg10_fast": round(fast, 4),
            "ndcg10_delta": round(fast - fp32, 4),
            "index_embed_fp32_chunks_per_s": round(fp32_rate, 2),
            "index_embed_fast_chunks_per_s": round(fast_rate, 2),
        }
    print(json.dumps(result | cpu_environment()))


if __name__ == "__main__":
    main()
