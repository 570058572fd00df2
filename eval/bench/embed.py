"""Docs/s of `SentenceEncoder.encode` against raw `SentenceTransformer.encode`, in one run.

    .venv/bin/python eval/bench/embed.py [--docs 500] [--repeats 3] [--model minilm]

Both embed the same SciFact abstracts (title + " " + text) with one loaded model at
batch size 64. The wrapper adds a prefix join, float32 conversion and L2 normalization,
so the ratio measures that overhead (target: >= 0.9). Runs alternate raw / ragsys,
swapping which goes first, so both see the same machine load, and each side reports its
best of `repeats` (the minimum time is the least noisy on a shared CPU). Progress goes
to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import cpu_environment, log  # noqa: E402

from ragsys.models import load_sentence_transformer  # noqa: E402
from ragsys.retrieve.dense import SentenceEncoder  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"
BATCH = 64


def scifact_texts(n: int) -> list[str]:
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    return [d["title"] + " " + d["text"] for d in docs]


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    if not (DATA / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {DATA}; see shared/data/README.md")

    texts = scifact_texts(args.docs)
    model = load_sentence_transformer(args.model, device="cpu")
    encoder = SentenceEncoder(model, BATCH, prefix="")

    def raw() -> np.ndarray:
        return model.encode(texts, batch_size=BATCH, show_progress_bar=False)

    log(f"warm-up on {len(texts[:BATCH])} docs, torch threads {torch.get_num_threads()}")
    model.encode(texts[:BATCH], batch_size=BATCH, show_progress_bar=False)
    diff = float(np.abs(encoder.encode(texts[:BATCH]) - raw()[:BATCH]).max())  # minilm ends in Normalize

    runs: dict[str, Callable[[], object]] = {"raw": raw, "ragsys": lambda: encoder.encode(texts)}
    best = {name: float("inf") for name in runs}
    for i in range(args.repeats):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))  # neither side always goes first
        for name in order:
            best[name] = min(best[name], timed(runs[name]))
        log(f"repeat {i + 1}/{args.repeats}: best raw {best['raw']:.2f} s, ragsys {best['ragsys']:.2f} s")

    raw_dps, ours_dps = len(texts) / best["raw"], len(texts) / best["ragsys"]
    result = {
        "bench": "embed",
        "model": args.model,
        "docs": len(texts),
        "batch_size": BATCH,
        "repeats": args.repeats,
        "raw_docs_per_s": round(raw_dps, 2),
        "ragsys_docs_per_s": round(ours_dps, 2),
        "ratio": round(ours_dps / raw_dps, 3),
        "max_abs_diff_first_batch": diff,
        **cpu_environment(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
