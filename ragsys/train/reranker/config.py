"""What a reranker training run is told (`RerankerTrainConfig`) and what it returns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ragsys.types import Frozen

# For type checkers only, so the config loads light (`ragsys --help` builds options from it);
# trainer.py, which makes the result, completes RerankerTrainResult once the pipeline has loaded.
if TYPE_CHECKING:
    from ragsys.pipeline import PipelineConfig

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # 1.0 would be the retrieval order again
DEV_MEASURE = "ndcg@10"


class RerankerTrainConfig(Frozen):
    """Defaults are for a small labelled set plus synthetic queries: listwise over 7 hard negatives,
    a few epochs at a low rate with warmup (the head starts random), then the dev check."""

    model: str = Field(default="minilm", description="base: an alias, a cross-encoder folder or hub id")
    loss: Literal["bce", "listwise"] = "listwise"
    n_negatives: int = Field(default=7, ge=1, description="mined hard negatives per question")
    in_batch_negatives: int = Field(default=1, ge=1, description="listwise: other questions' positives")
    epochs: float = Field(default=3.0, gt=0)
    learning_rate: float = Field(default=3e-5, gt=0)
    batch_size: int = Field(default=16, ge=1, description="questions per forward pass, with their passages")
    # Batches per optimizer step: 8 x 2 takes the steps of 16 at the activation memory of 8.
    grad_accum: int = Field(default=1, ge=1, description="batches per optimizer step")
    max_length: int = Field(default=256, ge=8)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    max_minutes: float | None = Field(default=None, gt=0)
    interpolate: float | None = Field(default=None, ge=0, le=1, description="None: pick on dev from `grid`")
    grid: tuple[float, ...] = DEFAULT_GRID
    top_n: int = Field(default=50, ge=1, description="candidates the reranker rescores")
    # A reranker costs latency on every query, and the best of ten weights on a small dev set beats
    # the baseline by a little through luck alone (measured: a weak reranker mixed at 0.9 added
    # 0.002 on 60 SciFact questions), so it must add a visible amount to be kept.
    min_gain: float = Field(default=0.005, ge=0, description="dev nDCG@10 the reranker must add")
    bf16: bool = Field(default=False, description="bf16 autocast where the CPU has bf16 (train/precision.py)")
    # Filings: after scoping every candidate is in a gold document, so dev nDCG@10 cannot move;
    # what can is whether the first passages state the reference's figures (ragsys.eval.evidence).
    dev_evidence_k: int | None = Field(
        default=None, ge=1,
        description="dev check: figure recall in this many passages where the reference states figures",
    )  # fmt: skip


class DevCheck(Frozen):
    """Dev nDCG@10 (or, with `dev_evidence_k`, figure recall where the reference states figures)
    of the candidates as retrieved (`without`) and reranked at each weight."""

    questions: int
    without: float
    by_weight: tuple[tuple[float, float], ...]
    best: float | None  # the weight to use, or None when no weight beats `without` by `min_gain`
    with_best: float | None  # dev nDCG@10 at `best`
    p_value: float | None  # paired randomization test, `best` against no reranker


class RerankerTrainResult(Frozen):
    model_dir: Path
    pipeline: PipelineConfig  # with the new reranker when `used`, else the input config unchanged
    used: bool
    checked: bool  # False when no dev questions were given: the reranker is kept unchecked
    interpolate: float | None
    dev: DevCheck | None
    examples: int
    dropped: int  # examples without any hard negative
    steps: int
    losses: tuple[float, ...]  # training loss at each logging step
    minutes: float
    stopped_early: bool
    resumed_from: str | None = None
