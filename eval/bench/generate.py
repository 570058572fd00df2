"""Tokens/s of the llama.cpp backend against transformers fp32 on one prompt, and how often they agree.

    .venv/bin/python eval/bench/generate.py [--model smollm2-135m] [--new-tokens 64] [--repeats 3]
                                            [--threads 0] [--agreement 50] [--question 0]

Speed: a PubMedQA question with its own abstract sections as numbered passages (synthetic
passages when the data is absent), built once by the generator's own prompt packing (441
tokens for the default question), decoded greedily for exactly `--new-tokens` tokens by
(a) raw `model.generate` in fp32 (`torch_fp32_tokens_per_s`), (b) ragsys's transformers
backend (`transformers_tokens_per_s`: what the streaming watch adds) and (c) ragsys's
llama.cpp backend on the model's cached Q8_0 GGUF (`fast_tokens_per_s`). Tokens/s is new
tokens over the whole call, prefill included (llama.cpp's cached prompt is dropped before each
timed call, or a repeated prompt would skip it), best of `--repeats`, sides alternating.
Target: fast >= 4x torch fp32. Threads: torch and llama.cpp get the same count (`--threads
0`: the CPUs this process may use).

Agreement: on the first `--agreement` PubMedQA questions (sorted PMIDs), the share whose
first 32 greedy tokens are identical on both backends (`first32_match`), and the mean number
of leading tokens that agree (quantization may change some; both read the same prompt ids).
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
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from _common import cpu_environment, log  # noqa: E402

from ragsys.generate.config import GeneratorConfig  # noqa: E402
from ragsys.generate.hf import HFGenerator  # noqa: E402
from ragsys.generate.local import LocalGenerator  # noqa: E402
from ragsys.generate.watch import TextWatch  # noqa: E402
from ragsys.models import load_causal_lm  # noqa: E402
from ragsys.types import Chunk, Hit  # noqa: E402

PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
SYNTHETIC = (
    "The Varna river is 212 kilometres long and flows from the Tesla mountains into Lake Orin.",
    "The Old Bridge over the Varna was completed in 1873 and has seven stone arches.",
    "Its designer, the engineer Ana Petrov, also built the harbour walls at Orin.",
)
AGREE_TOKENS = 32


def hit(i: int, text: str, title: str) -> Hit:
    chunk = Chunk(
        id=f"p{i}", doc_id=title, source=f"{title}.txt", text=text, page_start=1, page_end=1,
        start=0, end=len(text), hash=hashlib.sha256(text.encode()).hexdigest(), title=title,
    )  # fmt: skip
    return Hit(chunk=chunk, score=1.0, source="bench")


def questions(limit: int, first: int = 0) -> list[tuple[str, list[Hit], str]]:
    if not PUBMEDQA.exists():
        log(f"PubMedQA not found at {PUBMEDQA}; using synthetic passages")
        hits = [hit(i, t, "Molvania") for i, t in enumerate(SYNTHETIC)]
        return [("Who designed the Old Bridge?", hits, "synthetic")]
    data = json.loads(PUBMEDQA.read_text(encoding="utf-8"))
    out = []
    for pmid in sorted(data)[first : first + limit]:
        row = data[pmid]
        hits = [hit(i, t, f"PMID {pmid}") for i, t in enumerate(row["CONTEXTS"])]
        out.append((row["QUESTION"], hits, f"pubmedqa:{pmid}"))
    return out


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def greedy_ids(gen: LocalGenerator, question: str, hits: Sequence[Hit], n: int) -> list[int]:
    """The backend's first n greedy token ids for the generator's own prompt (no stop strings)."""
    config = gen.config.model_copy(update={"max_new_tokens": n, "min_new_tokens": 0, "stop": ()})
    prompt = gen.prompt(question, hits)
    watch = TextWatch(gen.tokenizer, len(prompt.ids), ())
    return gen.decoder.run(prompt.ids, watch, config)[:n]


def agreement(torch_gen: LocalGenerator, fast_gen: LocalGenerator, limit: int) -> dict[str, float]:
    same, leading = 0, 0
    items = questions(limit)
    for i, (question, hits, _) in enumerate(items):
        a = greedy_ids(torch_gen, question, hits, AGREE_TOKENS)
        b = greedy_ids(fast_gen, question, hits, AGREE_TOKENS)
        same += a == b
        leading += next(
            (j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        if (i + 1) % 10 == 0:
            log(f"agreement: {i + 1}/{len(items)} prompts, {same} identical so far")
    return {
        "agreement_prompts": len(items),
        "first32_match": round(same / len(items), 3),
        "mean_leading_tokens_agreeing": round(leading / len(items), 2),
    }


def forget(gen: LocalGenerator) -> None:
    """llama.cpp keeps the last prompt's KV cache; a repeated prompt would skip its prefill."""
    reset = getattr(gen.decoder, "forget", None)
    if callable(reset):
        reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="threads for both; 0: the CPUs available")
    parser.add_argument("--agreement", type=int, default=50, help="PubMedQA prompts compared (0: skip)")
    parser.add_argument("--question", type=int, default=0, help="which PubMedQA question (sorted PMIDs)")
    args = parser.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

    question, hits, source = questions(1, args.question)[0]
    n = args.new_tokens
    config = GeneratorConfig(model=args.model, max_new_tokens=n, min_new_tokens=n, stop=(), threads=threads)
    model, tokenizer = load_causal_lm(args.model)
    slow = HFGenerator(config.model_copy(update={"backend": "transformers"}), model, tokenizer)
    fast = config.model_copy(update={"backend": "llama-cpp"}).build()
    assert isinstance(fast, LocalGenerator)
    prompt = slow.prompt(question, hits)
    ids = torch.tensor([prompt.ids], dtype=torch.long)
    log(f"{source}: {len(prompt.ids)} prompt tokens, {len(prompt.passages)} passages, {threads} threads")

    def raw() -> Any:
        with torch.inference_mode():
            return model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                do_sample=False, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip

    runs: dict[str, Callable[[], object]] = {
        "torch_fp32": raw,
        "transformers": lambda: slow.generate(question, hits),
        "fast": lambda: (forget(fast), fast.generate(question, hits)),
    }
    log("warm-up")
    fast_answer = fast.generate(question, hits)
    slow.generate(question, hits)
    best = dict.fromkeys(runs, float("inf"))
    for i in range(args.repeats):
        for name in list(runs) if i % 2 == 0 else list(reversed(runs)):
            best[name] = min(best[name], timed(runs[name]))
        log(f"repeat {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items()))

    result: dict[str, object] = {
        "bench": "generate",
        "model": args.model,
        "source": source,
        "prompt_tokens": len(prompt.ids),
        "new_tokens": n,
        "fast_new_tokens": int(fast_answer.timings["new_tokens"]),
        "repeats": args.repeats,
        "torch_fp32_tokens_per_s": round(n / best["torch_fp32"], 2),
        "transformers_tokens_per_s": round(n / best["transformers"], 2),
        "fast_tokens_per_s": round(n / best["fast"], 2),
        "ratio": round(best["torch_fp32"] / best["fast"], 3),
        "fast_ttft_s": round(fast_answer.timings["ttft_s"], 4),
        "threads": threads,
    }
    if args.agreement:
        result |= agreement(slow, fast, args.agreement)
    print(json.dumps(result | cpu_environment()))


if __name__ == "__main__":
    main()
