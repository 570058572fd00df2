"""Tokens/s of `HFGenerator` against raw `model.generate` on the same prompt, and time to first token.

    .venv/bin/python eval/bench/generate.py [--model smollm2-135m] [--new-tokens 64] [--repeats 3]
                                            [--threads 1] [--question 0]

The prompt is a PubMedQA question with its own abstract sections as numbered passages
(synthetic passages when the data is absent), built once by `HFGenerator.prompt`. Both
sides decode greedily with `min_new_tokens = max_new_tokens`, so they produce the same
number of tokens; ragsys runs with no stop strings (they would end it early) but its
per-token watch still decodes and checks every step, so the ratio measures everything
ragsys adds to `transformers`' loop (target: >= 0.9). Runs alternate which side goes
first, and each reports its best of `repeats` (the least noisy figure on a shared CPU).
One torch thread by default: on a shared 2-core machine, two threads spin against other
processes and run 3-4x slower and far noisier (`--threads 0` keeps torch's default).

Time to first token: ragsys is timed from calling `generate_stream` to the first text
piece it yields (prompt building, thread start, prefill, one decode step); raw is
`model.generate(max_new_tokens=1)` on the prepared ids (prefill and one step).
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from _common import cpu_environment, log  # noqa: E402

from ragsys.generate.hf import GeneratorConfig, HFGenerator  # noqa: E402
from ragsys.models import load_causal_lm  # noqa: E402
from ragsys.types import Chunk, Hit  # noqa: E402

PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
SYNTHETIC = (
    "The Varna river is 212 kilometres long and flows from the Tesla mountains into Lake Orin.",
    "The Old Bridge over the Varna was completed in 1873 and has seven stone arches.",
    "Its designer, the engineer Ana Petrov, also built the harbour walls at Orin.",
)


def hit(i: int, text: str, title: str) -> Hit:
    chunk = Chunk(
        id=f"p{i}",
        doc_id=title,
        source=f"{title}.txt",
        text=text,
        page_start=1,
        page_end=1,
        start=0,
        end=len(text),
        hash=hashlib.sha256(text.encode()).hexdigest(),
        title=title,
    )
    return Hit(chunk=chunk, score=1.0, source="bench")


def question_and_hits(index: int) -> tuple[str, list[Hit], str]:
    if not PUBMEDQA.exists():
        log(f"PubMedQA not found at {PUBMEDQA}; using synthetic passages")
        return (
            "Who designed the Old Bridge?",
            [hit(i, t, "Molvania") for i, t in enumerate(SYNTHETIC)],
            "synthetic",
        )
    data = json.loads(PUBMEDQA.read_text(encoding="utf-8"))
    pmid = sorted(data)[index]
    row = data[pmid]
    return (
        row["QUESTION"],
        [hit(i, t, f"PMID {pmid}") for i, t in enumerate(row["CONTEXTS"])],
        f"pubmedqa:{pmid}",
    )


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def first_piece_s(gen: HFGenerator, question: str, hits: list[Hit]) -> float:
    start = time.perf_counter()
    stream = gen.generate_stream(question, hits)
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()  # stops the generation thread
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps torch's default")
    parser.add_argument("--question", type=int, default=0, help="which PubMedQA question (sorted PMIDs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    question, hits, source = question_and_hits(args.question)
    model, tokenizer = load_causal_lm(args.model)
    n = args.new_tokens
    config = GeneratorConfig(model=args.model, max_new_tokens=n, min_new_tokens=n, stop=())
    gen = HFGenerator(config, model, tokenizer)
    prompt = gen.prompt(question, hits)
    ids = torch.tensor([prompt.ids], dtype=torch.long)
    log(
        f"{source}: {len(prompt.ids)} prompt tokens, {len(prompt.passages)} passages, torch threads "
        f"{torch.get_num_threads()}"
    )

    def raw(max_new: int) -> Any:
        with torch.inference_mode():
            return model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new,
                min_new_tokens=max_new,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )

    log("warm-up")
    raw_ids = raw(n)[0, ids.shape[1] :].tolist()
    answer = gen.generate(question, hits)
    raw_text = tokenizer.decode(raw_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()

    runs: dict[str, Callable[[], object]] = {
        "raw": lambda: raw(n),
        "ragsys": lambda: gen.generate(question, hits),
    }
    best = {name: float("inf") for name in runs}
    ttft = {"raw": float("inf"), "ragsys": float("inf")}
    for i in range(args.repeats):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in order:
            best[name] = min(best[name], timed(runs[name]))
        ttft["raw"] = min(ttft["raw"], timed(lambda: raw(1)))
        ttft["ragsys"] = min(ttft["ragsys"], first_piece_s(gen, question, hits))
        log(
            f"repeat {i + 1}/{args.repeats}: best raw {best['raw']:.2f} s, ragsys {best['ragsys']:.2f} s; "
            f"ttft raw {ttft['raw']:.3f} s, ragsys {ttft['ragsys']:.3f} s"
        )

    raw_tps, ours_tps = n / best["raw"], n / best["ragsys"]
    result = {
        "bench": "generate",
        "model": args.model,
        "source": source,
        "prompt_tokens": len(prompt.ids),
        "new_tokens": n,
        "ragsys_new_tokens": int(answer.timings["new_tokens"]),
        "same_text": answer.text == raw_text,
        "repeats": args.repeats,
        "raw_tokens_per_s": round(raw_tps, 2),
        "ragsys_tokens_per_s": round(ours_tps, 2),
        "ratio": round(ours_tps / raw_tps, 3),
        "raw_ttft_s": round(ttft["raw"], 4),
        "ragsys_stream_ttft_s": round(ttft["ragsys"], 4),
        "ttft_ratio": round(ttft["ragsys"] / ttft["raw"], 3),
        **cpu_environment(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
