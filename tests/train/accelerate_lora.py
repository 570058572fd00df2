"""Trains a LoRA adapter on the tiny random Llama with `run_loop`; run by test_accelerate.py,
plainly (one process) or under `accelerate launch --multi_gpu --num_processes 2`.

argv: tiny LM folder, output folder, budget in minutes ("none": no limit). The main process
writes the adapter's weights (`weights.safetensors`) and the loop's result (`result.json`).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def main(lm: Path, out: Path, minutes: float | None) -> None:
    import torch
    from safetensors.torch import save_file

    from ragsys.models import load_causal_lm
    from ragsys.train.budget import TimeBudget, seed_everything
    from ragsys.train.generator.config import GeneratorTrainConfig
    from ragsys.train.generator.data import Example, Seq
    from ragsys.train.generator.loop import run_loop
    from ragsys.train.generator.steps import StepContext, sft_step
    from ragsys.train.lora import LoraSettings, attach_lora
    from ragsys.train.parallel import current_world

    torch.set_num_threads(1)
    seed_everything(0)
    model = attach_lora(load_causal_lm(str(lm))[0], LoraSettings(r=4, alpha=8, dropout=0.0))
    rng = random.Random(0)
    # Prompts of different lengths, completions of one length: the token-mean SFT loss is then
    # the mean over examples, which data-parallel steps reproduce exactly.
    prompts = [4 + i % 5 for i in range(12)]
    examples = [Example(seqs=(Seq(ids=tuple(rng.randrange(3, 60) for _ in range(n + 4)), n_prompt=n),))
                for n in prompts]  # fmt: skip
    config = GeneratorTrainConfig(batch_size=4, epochs=2, learning_rate=1e-2, warmup_ratio=0.0)
    result = run_loop(model, examples, sft_step, StepContext(pad_id=0), config, out / "checkpoints", "fp",
                      TimeBudget(minutes), None)  # fmt: skip
    if current_world().main:
        weights = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(weights, str(out / "weights.safetensors"))
        (out / "result.json").write_text(json.dumps({
            "processes": current_world().size, "steps": result.steps, "stopped_early": result.stopped_early,
            "resumed_from": str(result.resumed_from) if result.resumed_from else None,
            "epoch_losses": list(result.epoch_losses),
        }))  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), None if sys.argv[3] == "none" else float(sys.argv[3]))
