"""Training steps/s in bf16 autocast against fp32, for the retriever, the reranker and generator SFT.

    .venv/bin/python eval/bench/train_bf16.py [--steps 12] [--index runs/scifact/index]

Each trainer runs through ragsys's own code (`train_retriever`, `train_reranker`,
`train_generator`) for `--steps` optimizer steps in fp32 and then in bf16 on the same
examples; steps/s is timed between the first and the last step's progress report, so model
loading, mining and retrieval are left out. Examples: SciFact train questions with their
gold abstract as the positive (retriever: batch 32, cached MNRL, one mined negative; reranker:
batch 8, listwise over 3 mined negatives) and, for the generator, PubMedQA train questions
with their reference answers (LoRA SFT, batch 1 x 4, the pipeline's 3 retrieved passages);
each needs its index (`--index` for SciFact, `--pubmedqa-index` for PubMedQA, as
eval/scifact.sh and eval/pubmedqa_e2e.sh build them). Quality is not measured here: see
docs/results.md. Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _common import cpu_environment, log  # noqa: E402

from ragsys.eval.evalset import load_eval_set  # noqa: E402
from ragsys.index.reader import Index  # noqa: E402
from ragsys.pipeline import default_pipeline  # noqa: E402
from ragsys.train.generator.config import GeneratorTrainConfig  # noqa: E402
from ragsys.train.generator.trainer import train_generator  # noqa: E402
from ragsys.train.mining.hard_negatives import labelled_examples  # noqa: E402
from ragsys.train.reranker.config import RerankerTrainConfig  # noqa: E402
from ragsys.train.reranker.trainer import train_reranker  # noqa: E402
from ragsys.train.retriever import RetrieverTrainConfig, train_retriever  # noqa: E402


class Clock:
    """Records when each optimizer step was reported; steps/s between the first and the last."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def step(self, *_: Any) -> None:
        self.times.append(time.perf_counter())

    def generator_step(self, report: Any) -> None:
        if report.phase == "train":
            self.step()

    @property
    def steps_per_s(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def timed(name: str, run: Callable[[bool, Clock, Path], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for bf16 in (False, True):
        clock = Clock()
        with tempfile.TemporaryDirectory() as tmp:
            run(bf16, clock, Path(tmp))
        out["bf16" if bf16 else "fp32"] = round(clock.steps_per_s, 4)
        precision = "bf16" if bf16 else "fp32"
        log(f"{name} {precision}: {clock.steps_per_s:.3f} steps/s over {len(clock.times)} steps")
    out["speedup"] = round(out["bf16"] / out["fp32"], 3) if out["fp32"] else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--index", type=Path, default=Path("runs/scifact/index"))
    parser.add_argument("--eval-set", type=Path, default=Path("runs/scifact.jsonl"))
    parser.add_argument("--pubmedqa-index", type=Path, default=Path("runs/pubmedqa-e2e/index-hybrid"))
    parser.add_argument("--pubmedqa-set", type=Path, default=Path("runs/pubmedqa-e2e/pubmedqa.jsonl"))
    args = parser.parse_args()
    config = default_pipeline()
    result: dict[str, Any] = {"bench": "train_bf16", "steps": args.steps}

    index = Index.open(args.index)
    items = load_eval_set(args.eval_set, {"train"})
    search = config.build(index)

    def retriever(bf16: bool, clock: Clock, out: Path) -> None:
        examples = labelled_examples(items[: 32 * args.steps], index, search, n_negatives=1, depth=20)
        train = RetrieverTrainConfig(batch_size=32, epochs=1, n_negatives=1, bf16=bf16)
        train_retriever(config, train, examples, out=out, progress=clock.step)

    def reranker(bf16: bool, clock: Clock, out: Path) -> None:
        examples = labelled_examples(items[: 8 * args.steps], index, search, n_negatives=3, depth=20)
        train = RerankerTrainConfig(batch_size=8, epochs=1, n_negatives=3, top_n=20, bf16=bf16)
        train_reranker(config, train, examples, out=out, progress=clock.step)

    result["retriever_steps_per_s"] = timed("retriever", retriever)
    result["reranker_steps_per_s"] = timed("reranker", reranker)
    if args.pubmedqa_index.exists():
        qa_index = Index.open(args.pubmedqa_index)
        qa_items = load_eval_set(args.pubmedqa_set, {"train"})[: 4 * args.steps]
        small = config.model_copy(update={"top_k": 3})

        def generator(bf16: bool, clock: Clock, out: Path) -> None:
            train = GeneratorTrainConfig(
                method="sft", batch_size=1, grad_accum=4, gradient_checkpointing=True, bf16=bf16
            )
            train_generator(
                small, train, index=qa_index, items=qa_items, out=out, progress=clock.generator_step
            )

        result["generator_sft_steps_per_s"] = timed("generator sft", generator)
    else:
        log(f"{args.pubmedqa_index} not found: generator SFT skipped (run eval/pubmedqa_e2e.sh first)")
    print(json.dumps(result | cpu_environment()))


if __name__ == "__main__":
    main()
