"""Data-parallel training across processes, for the loops ragsys runs itself (the generator's).

Under `accelerate launch --multi_gpu --num_processes N` (on CPUs accelerate then runs N
processes joined by gloo; without `--multi_gpu` it starts one), each process takes every
N-th example of each batch, weights its loss by its share of what the batch loss averages
over (completion tokens for SFT, examples otherwise), and the gradients are summed across
processes before the optimizer step: the step equals the one-process step up to
floating-point summation order and dropout's random masks (KTO's batch-level reference
point is the exception: each process estimates it from its own share). Every process applies
the same step, so the weights stay identical and only the main process writes checkpoints.
Started without a launcher, `current_world()` is one process and nothing here talks to anyone.

The sentence-transformers trainers (encoder, cross-encoder) are transformers `Trainer`s,
which join the same process group through accelerate by themselves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of a batch: every `size`-th item from `rank` (maybe none)."""
        return list(items[self.rank :: self.size])

    def sum_grads(self, params: Sequence[Any]) -> None:
        """Sums each parameter's gradient over the processes (a process with no share adds 0)."""
        if self.size == 1:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads])  # one all-reduce, not one per tensor
        dist.all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads, strict=True):
            p.grad = flat[offset : offset + g.numel()].view_as(g).to(g.dtype)
            offset += g.numel()

    def sum(self, value: float) -> float:
        if self.size == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item())

    def any(self, flag: bool) -> bool:
        """True on every process if it is on any: a time budget must stop all of them at once."""
        return self.sum(1.0 if flag else 0.0) > 0

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


def current_world() -> World:
    """The process group `accelerate launch` describes (WORLD_SIZE > 1), joined on first use."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    import torch
    from accelerate import PartialState

    # Without cpu=True, accelerate on a machine without GPUs ignores the launcher and runs alone.
    state = PartialState(cpu=not torch.cuda.is_available())  # gloo on CPUs
    return World(rank=state.process_index, size=state.num_processes)
