"""Folding a LoRA adapter into full weights, so the next adapter trains on top of it.

A generator config names one base model and at most one adapter. Stacking methods (SFT,
then KTO on the SFT model) therefore merges the first adapter into a new full-weight folder
(safetensors, with the tokenizer and its chat template) that becomes the next base.
"""

from __future__ import annotations

from pathlib import Path

from ragsys.fsutil import atomic_dir
from ragsys.pipeline import PipelineConfig


def merge_into_model(model: str, adapter: str, out: Path) -> Path:
    """`out` holds `model` with `adapter` merged; reused when it is already complete."""
    from ragsys.generate.hf import load_adapter
    from ragsys.models import load_causal_lm

    done = out / "config.json"
    if done.exists():
        return out
    base, tokenizer = load_causal_lm(model)
    merged = load_adapter(base, adapter)
    with atomic_dir(out) as tmp:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    return out


def stack_on_adapter(config: PipelineConfig, out: Path) -> PipelineConfig:
    """The pipeline with its generator's adapter (if any) merged into `out`, ready for a new one."""
    gen = config.generator
    if gen is None or gen.adapter is None:
        return config
    merged = merge_into_model(gen.model, gen.adapter, out)
    return config.model_copy(
        update={"generator": gen.model_copy(update={"model": str(merged), "adapter": None})}
    )
