"""Running a sentence-transformers trainer the ragsys way, for the encoder and the cross-encoder.

A checkpoint per epoch (two kept), resume from the newest complete one, stop cleanly when the
time budget runs out (`budget.BudgetCallback` saves first), report every optimizer step, log
the loss every 10 steps, and seed both the model's and the data's randomness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ragsys.train.budget import BudgetCallback, Progress, StepProgressCallback, last_checkpoint
from ragsys.train.parallel import current_world
from ragsys.train.precision import use_bf16


class Schedule(NamedTuple):
    """The training settings both ranker configs have."""

    epochs: float
    batch_size: int
    learning_rate: float
    warmup_ratio: float
    seed: int
    bf16: bool = False  # torch.autocast bf16 on CPUs with AVX-512 BF16 or AMX (train/precision.py)

    @classmethod
    def of(cls, train: Any) -> Schedule:
        """From a retriever or reranker train config (both have these fields)."""
        return cls(
            train.epochs, train.batch_size, train.learning_rate, train.warmup_ratio, train.seed, train.bf16
        )


class FitStats(NamedTuple):
    steps: int
    losses: tuple[float, ...]  # the training loss at each logging step
    stopped_early: bool
    resumed_from: str | None


def fit(
    trainer_cls: Any, args_cls: Any, model: Any, schedule: Schedule, ckpt_dir: Path, budget: BudgetCallback,
    progress: Progress | None, *, train_dataset: Any, loss: Any, **args: Any,
) -> FitStats:  # fmt: skip
    """Trains `model` in place with `trainer_cls` (a sentence-transformers trainer) and its
    arguments class; `args` adds to or overrides the arguments below.

    Under `accelerate launch --multi_gpu --num_processes N` the trainer runs data-parallel
    (DDP, gloo on CPUs) and each process takes `batch_size / N` of every batch, so a step
    sees the batch one process would; the trainer writes checkpoints from the main process.
    """
    resume = last_checkpoint(ckpt_dir)
    per_process = max(1, schedule.batch_size // current_world().size)
    arguments = args_cls(**{
        "output_dir": str(ckpt_dir), "num_train_epochs": schedule.epochs,
        "per_device_train_batch_size": per_process, "learning_rate": schedule.learning_rate,
        "warmup_steps": schedule.warmup_ratio,  # transformers 5: a float below 1 is a ratio of all steps
        "save_strategy": "epoch", "save_total_limit": 2, "logging_steps": 10, "seed": schedule.seed,
        "data_seed": schedule.seed, "report_to": "none", "disable_tqdm": progress is not None,
        "use_cpu": model.device.type == "cpu",  # the device the model loader chose
        "bf16": use_bf16(schedule.bf16, model.device.type),
    } | args)  # fmt: skip
    callbacks: list[Any] = [budget] + ([StepProgressCallback(progress)] if progress is not None else [])
    trainer = trainer_cls(
        model=model, args=arguments, train_dataset=train_dataset, loss=loss, callbacks=callbacks
    )
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    losses = tuple(float(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    return FitStats(int(output.global_step), losses, budget.stopped_early, str(resume) if resume else None)
