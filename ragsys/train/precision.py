"""bf16 training: whether a run asked for it can have it here.

`torch.autocast` in bfloat16 runs matrix products at about twice fp32's speed on CPUs with
AVX-512 BF16 or AMX, keeping master weights and optimizer state in fp32. It is a config flag
(`bf16`) on the retriever, reranker and generator trainers, off by default: the issue's rule is
that it becomes the default only where its measured quality holds (docs/results.md has the
steps/s and quality measured so far, from eval/bench/train_bf16.py). On a CPU without bf16
instructions autocast would emulate it, slower than fp32, so the flag is dropped with a note.
"""

from __future__ import annotations

from ragsys.encoders.backend import has_bf16, note


def use_bf16(requested: bool, device: str = "cpu") -> bool:
    """True when bf16 autocast should run: asked for, and the device executes bf16 natively."""
    if not requested:
        return False
    if device == "cpu" and not has_bf16():
        note("this CPU has no bf16 instructions (AVX-512 BF16 or AMX); training in fp32")
        return False
    return True
