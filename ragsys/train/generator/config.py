"""What a generator post-training run is told (`GeneratorTrainConfig`) and what it returns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ragsys.train.lora import LoraSettings
from ragsys.types import Frozen

# For type checkers only, so the config loads light (`ragsys --help` builds options from it);
# trainer.py, which makes the result, completes GeneratorTrainResult once the pipeline has loaded.
if TYPE_CHECKING:
    from ragsys.pipeline import PipelineConfig

Method = Literal["sft", "dpo", "kto", "apo-zero", "apo-down", "clair"]


class GeneratorTrainConfig(Frozen):
    """How the adapter is trained. `max_minutes` is excluded from the run's fingerprint: a
    resumed run may get a different budget, but nothing else may change."""

    kind: Literal["generator"] = "generator"
    method: Method = "sft"
    beta: float = Field(default=0.1, gt=0.0)
    learning_rate: float = Field(default=2e-4, gt=0.0)  # LoRA tolerates ~10x full fine-tuning's rate
    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=2048, ge=8)  # tokens of prompt + answer; longer examples are dropped
    warmup_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float | None = Field(default=1.0, gt=0.0)
    seed: int = 0
    lora: LoraSettings = LoraSettings()
    max_minutes: float | None = Field(default=None, ge=0.0)
    desirable_weight: float | None = Field(default=None, gt=0.0)  # KTO; None: the paper's rebalancing
    undesirable_weight: float | None = Field(default=None, gt=0.0)
    k: int | None = Field(default=None, ge=1)  # passages retrieved per question; None: the pipeline's top_k
    label_options: tuple[str, ...] = ("yes", "no", "maybe")
    reviser: str | None = None  # clair: a stronger causal LM that revises the model's own answers
    max_new_tokens: int | None = Field(default=None, ge=1)  # own answers/revisions; None: the generator's
    group_by_length: bool = True
    gradient_checkpointing: bool = False
    # sft: the passages the model learns from: "retrieved" (what inference sees), "evidence" (those
    # with the gold chunks stating the reference's figures put in, RAFT-style: evidence.py) or
    # "gold" (the gold documents' first chunks: the isolated control)
    contexts: Literal["retrieved", "evidence", "gold"] = "retrieved"
    targets: Literal["supported", "reference"] = Field(
        default="supported",
        description="sft targets and own-mistake revisions: 'supported' cuts a reference that states figures "
        "to the sentences whose figures the prompt's passages state, cited (ragsys.train.generator.targets); "
        "'reference' teaches the whole reference",
    )
    # sft: resample so each closed-set label is drawn equally often (see data.balanced_items)
    balance_labels: bool = False
    feedback_version: str = Field(
        default="current", min_length=1,
        description="whose --feedback records to learn from: 'current' (recorded against this --pipeline's "
        "version, as `ragsys serve` records it), 'all', or one version string; the rest are counted as "
        "skipped_other_versions in the run's JSON (ragsys.feedback.select)",
    )  # fmt: skip
    feedback_held_out: tuple[str, ...] = Field(
        default=(),
        description="question keys (ragsys.feedback.select.question_key) whose --feedback records are not "
        "learned from: `ragsys tune` passes the questions a stage is judged on; counted as skipped_held_out",
    )
    bf16: bool = (
        False  # bf16 autocast for the policy's forward passes where the CPU has bf16 (train/precision.py)
    )

    def for_feedback_of(self, config: PipelineConfig) -> GeneratorTrainConfig:
        """`feedback_version` "current" made concrete: `config`'s version (the pipeline as served,
        before any adapter merge changed it)."""
        from ragsys.feedback.select import resolve_version

        version = resolve_version(self.feedback_version, config.version())
        return self.model_copy(update={"feedback_version": version})


class GeneratorTrainResult(Frozen):
    method: Method
    adapter: Path
    pipeline: PipelineConfig  # the input pipeline with generator.adapter = adapter
    epoch_losses: tuple[float, ...]
    examples: int
    dropped_too_long: int
    stats: dict[str, float]  # where the examples came from, KTO weights, ...
    # the feedback store's records used: thumbs_up, thumbs_down, revisions, skipped_other_versions,
    # duplicates (empty without a store), and the pipeline version they were recorded against
    feedback: dict[str, int] = {}
    feedback_version: str | None = None
    steps: int
    stopped_early: bool
    resumed_from: Path | None
    minutes: float
