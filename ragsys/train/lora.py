"""LoRA (Hu et al. 2021) through peft: the only module that touches peft while training.

The generator is post-trained as a low-rank adapter on the frozen base model, so a run
keeps one copy of the weights: the reference model that DPO/KTO/APO compare against is
the same module with the adapter switched off (`reference`), not a second model.
`save_adapter` writes the folder `ragsys.generate.load_adapter` (and so
`GeneratorConfig(adapter=...)`) reads: `adapter_config.json` + `adapter_model.safetensors`.

Example:
    >>> model, tok = load_causal_lm("smollm2-135m")  # doctest: +SKIP
    >>> model = attach_lora(model, LoraSettings())  # doctest: +SKIP
    >>> with reference(model):  # doctest: +SKIP
    ...     base_logits = model(input_ids=ids).logits
    >>> save_adapter(model, Path("out/adapter"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ragsys.fsutil import atomic_dir
from ragsys.types import Frozen

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

# Attention and MLP projections of Llama-style blocks (Llama, Mistral, Qwen2, SmolLM2):
# QLoRA (Dettmers et al. 2023) found adapting every linear layer matters more than the rank.
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraSettings(Frozen):
    """Rank, scale (alpha / r) and dropout of the adapter, and which linear layers get one."""

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS


def attach_lora(model: PreTrainedModel, settings: LoraSettings) -> Any:
    """Wrap `model` in a peft model with a fresh, trainable adapter; the base weights freeze.

    peft draws lora_A from torch's global RNG, so seed before calling for reproducible runs.
    lora_B starts at zero: the wrapped model first computes exactly what the base did.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_parameters(model: Any) -> dict[str, torch.Tensor]:
    """The trainable (adapter) parameters by name, in a stable order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def save_adapter(model: Any, directory: Path) -> Path:
    """Write the adapter as safetensors, replacing `directory` only once the copy is complete.

    A crash mid-save leaves the previous adapter (or nothing), never half a folder that
    `load_adapter` would read as valid.
    """
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
    return directory


def load_adapter_weights(model: Any, directory: Path) -> None:
    """Load saved adapter weights into an attached adapter of the same shape (for resuming)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(Path(directory) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    unused = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unused:
        raise ValueError(f"{directory}: adapter weights do not fit this model ({unused[:3]} ...)")


@contextmanager
def reference(model: Any) -> Iterator[None]:
    """The base model's forward pass: the adapter is bypassed inside the block.

    This is peft's `disable_adapter()`; the reference log-probs of preference training are
    therefore those of the exact weights the adapter started from.
    """
    with model.disable_adapter():
        yield
