"""The generator's training loop: plain torch, AdamW on the adapter, linear warmup and decay.

Deterministic: the batch order of epoch e is a function of (seed, e), dropout draws from
torch's global RNG, and both are saved in checkpoints together with the optimizer and
scheduler, so a run stopped by its time budget and resumed ends with exactly the weights
an uninterrupted run reaches. The budget is checked after every optimizer step; a
checkpoint is written after every epoch and when the budget stops the run mid-epoch.

Under `accelerate launch --multi_gpu --num_processes N` the loop is data-parallel
(`ragsys.train.parallel`): each process runs its share of every batch, gradients are summed
before each step, the budget stops all processes at the same step, and only the main
process writes checkpoints (every process resumes from them).

Example:
    >>> result = run_loop(model, examples, sft_step, StepContext(pad_id=0), config,  # doctest: +SKIP
    ...                   out / "checkpoints", fingerprint, TimeBudget(30), None)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragsys.train.budget import TimeBudget
from ragsys.train.generator.checkpoint import (
    LoopState,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    prune_step_checkpoints,
    save_checkpoint,
)
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.generator.data import Example
from ragsys.train.generator.steps import StepContext, StepLoss
from ragsys.train.parallel import World, current_world
from ragsys.train.precision import use_bf16

MEGABATCH = 16  # length grouping sorts within windows of this many batches


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: `done` of `total` units of `phase` (loss: mean of the epoch so far).

    Phases, in order: "retrieve", "generate" (own answers, revisions), "reference", "train".
    """

    phase: str
    done: int
    total: int
    epoch: int = 0
    loss: float | None = None


ProgressFn = Callable[[TrainProgress], None]


@dataclass(frozen=True)
class LoopResult:
    epoch_losses: tuple[float, ...]
    steps: int
    stopped_early: bool
    resumed_from: Path | None


def epoch_order(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Batches of example indices for one epoch, a pure function of (seed, epoch).

    With `group_by_length`, a shuffled window of MEGABATCH batches is sorted by length
    before cutting, so batches pad little, and the batches are then shuffled again so
    long ones are not all first (the scheme of transformers' LengthGroupedSampler).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    perm = list(range(len(lengths)))
    rng.shuffle(perm)
    if group_by_length:
        window = batch_size * MEGABATCH
        perm = [
            j
            for w in range(0, len(perm), window)
            for j in sorted(perm[w : w + window], key=lambda i: (-lengths[i], i))
        ]
    batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """LR factor for optimizer step k: ramps up over `warmup` steps, then falls linearly to ~0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)  # never 0: a 1-step run still learns
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def run_loop(
    model: Any, examples: Sequence[Example], step_loss: StepLoss, ctx: StepContext, s: GeneratorTrainConfig,
    checkpoints: Path, fingerprint: str, budget: TimeBudget, progress: ProgressFn | None,
) -> LoopResult:  # fmt: skip
    """Train (or continue training) the adapter; resumes from the newest checkpoint in `checkpoints`."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / s.batch_size) / s.grad_accum)
    total = s.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(round(s.warmup_ratio * total), total)
    )
    resumed = latest_checkpoint(checkpoints)
    state = LoopState()
    if resumed is not None:
        state = load_checkpoint(resumed, model, optimizer, scheduler, fingerprint)
    world = current_world()
    loop = _Loop(model, examples, step_loss, ctx, s, optimizer, scheduler, params, total, progress, world)
    model.train(True)
    while state.epoch < s.epochs:
        if not state.order:
            lengths = [e.length for e in examples]
            state.order = epoch_order(lengths, s.batch_size, s.seed, state.epoch, s.group_by_length)
        finished = loop.epoch(state, budget)
        if finished:
            _end_epoch(state)
        if world.main:  # every process holds the same weights and state
            saved = save_checkpoint(
                checkpoints, checkpoint_name(state, finished), model, optimizer, scheduler, state, fingerprint
            )
            prune_step_checkpoints(checkpoints, keep=saved)
        world.barrier()
        if world.any(budget.expired) and state.epoch < s.epochs:
            return LoopResult(tuple(state.epoch_losses), state.step, True, resumed)
    model.train(False)
    return LoopResult(tuple(state.epoch_losses), state.step, False, resumed)


def _end_epoch(state: LoopState) -> None:
    state.epoch_losses.append(state.loss_sum / max(state.loss_count, 1))
    state.epoch += 1
    state.batch, state.loss_sum, state.loss_count, state.order = 0, 0.0, 0, []


@dataclass
class _Loop:
    model: Any
    examples: Sequence[Example]
    step_loss: StepLoss
    ctx: StepContext
    s: GeneratorTrainConfig
    optimizer: Any
    scheduler: Any
    params: list[Any]
    total: int
    progress: ProgressFn | None
    world: World = World()

    def epoch(self, state: LoopState, budget: TimeBudget) -> bool:
        """Optimizer steps until the epoch ends (True) or the budget runs out first (False)."""
        while state.batch < len(state.order):
            self.step(state)
            if state.batch < len(state.order) and self.world.any(budget.expired):
                return False
        return True

    def _weight(self, indices: Sequence[int]) -> int:
        """What a batch's loss averages over: SFT's over completion tokens, the others' over examples."""
        if self.s.method != "sft":
            return len(indices)
        seqs = [self.examples[i].seqs[0] for i in indices]
        return sum(len(q) - q.n_prompt - sum(hi - lo for lo, hi in q.skip) for q in seqs)

    def step(self, state: LoopState) -> None:
        """One optimizer step over up to `grad_accum` micro-batches, averaging their gradients."""
        import torch

        group = state.order[state.batch : state.batch + self.s.grad_accum]
        self.optimizer.zero_grad(set_to_none=True)
        bf16 = use_bf16(self.s.bf16, self.model.device.type)
        loss_sum = 0.0
        for indices in group:
            mine = self.world.shard(indices)  # one process: the whole batch
            if not mine:
                continue
            share = self._weight(mine) / self._weight(indices)  # the batch loss: shares summed
            with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = self.step_loss(self.model, [self.examples[i] for i in mine], self.ctx)
            (loss.float() * share / len(group)).backward()  # type: ignore[no-untyped-call]
            loss_sum += float(loss.detach()) * share
        self.world.sum_grads(self.params)
        state.loss_sum += self.world.sum(loss_sum)
        state.loss_count += len(group)
        if self.s.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.s.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        state.batch += len(group)
        state.step += 1
        if self.progress is not None:
            mean = state.loss_sum / max(state.loss_count, 1)
            self.progress(TrainProgress("train", state.step, self.total, state.epoch + 1, mean))
