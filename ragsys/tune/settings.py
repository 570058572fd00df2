"""What `ragsys tune` runs and how: the stages in order, and every setting of each stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ragsys.feedback.select import resolve_version
from ragsys.pipeline import PipelineConfig
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.mining.synthetic import SyntheticConfig
from ragsys.train.reranker.config import RerankerTrainConfig
from ragsys.train.retriever import RetrieverTrainConfig
from ragsys.types import Frozen

StageName = Literal[
    "scope", "synthetic", "retriever", "reranker", "mixture", "context", "labels", "generator", "preference"
]
STAGE_ORDER: tuple[StageName, ...] = (
    "scope",
    "synthetic",
    "retriever",
    "reranker",
    "mixture",
    "context",
    "labels",
    "generator",
    "preference",
)


class TuneSettings(Frozen):
    dev_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_dev: int | None = Field(default=200, ge=1)
    dev_answers: int = Field(default=100, ge=1, description="dev questions scored end to end (slow)")
    alpha: float = Field(default=0.1, gt=0, le=1, description="a stage stays only if p < alpha on dev")
    folds: int = Field(
        default=0, ge=0, description="judge stages by cross-fitting over this many folds (0: one dev split)"
    )
    synthetic_below: int = Field(default=200, ge=0, description="write synthetic queries below this many")
    synthetic: SyntheticConfig = SyntheticConfig()
    # At least 16 steps of 32: a hundred questions (the 10-Q train split) are 4 steps an epoch, and
    # 16 lifted dev figure recall in 3 passages from 0.056 to 0.274 where 4 reached 0.146.
    retriever: RetrieverTrainConfig = RetrieverTrainConfig(min_steps=16)
    # The settings that made the MiniLM cross-encoder learn on SciFact (issue 5's measurements):
    # lr 1e-4 with inverse-cloze pseudo-queries added; at 3e-5 on the labels alone it stayed at chance.
    # Steps of 16 questions, taken as 2 batches of 8: one batch of 16 x 5 passages x 192 tokens
    # took the process to 8.0 GB after 12 steps (8.4 GB peak in a SciFact tune), over the 8 GB
    # target; batches of 8 peaked at 5.0 GB. Plain steps of 8 (217 instead of 109) left the
    # reranker's dev gain unshown on SciFact (+0.018, p = 0.145, reverted).
    reranker: RerankerTrainConfig = RerankerTrainConfig(
        n_negatives=3, epochs=1.0, max_length=192, learning_rate=1e-4, batch_size=8, grad_accum=2
    )
    reranker_ict: int = Field(default=1000, ge=0, description="inverse-cloze pseudo-queries for the reranker")
    # Batch 1, as the issue-5 PubMedQA runs: the default batch of 4 long RAG prompts peaked near
    # 11 GB on the CPU, over the 8 GB target; examples are sorted by length either way.
    # Labels balanced: on PubMedQA plain SFT collapsed to "yes" for every question. Contexts as
    # retrieved: with the evidence put in (`--sft-contexts evidence`, train/generator/evidence.py)
    # 91 of 94 10-Q targets were kept instead of 65, but dev did not show a gain (+0.009, p = 0.72).
    generator: GeneratorTrainConfig = GeneratorTrainConfig(batch_size=1, balance_labels=True)
    label_calibration: int = Field(
        default=60, ge=0, description="closed-set train questions held out of SFT to calibrate the label step"
    )
    label_questions: int = Field(
        default=200, ge=2, description="labels stage: closed-set train questions answered to fit the offsets"
    )
    preference_methods: tuple[Literal["kto", "clair", "apo-zero", "dpo"], ...] = Field(
        default=("kto", "clair"), description="preference stage: methods run in order, each on the last"
    )
    feedback_version: str = Field(
        default="current", min_length=1,
        description="--feedback records used: 'current' (the tuned pipeline's input version), 'all', or one",
    )  # fmt: skip
    lm_k: int = Field(default=5, ge=2, description="passages per question the LM judges")
    lm_questions: int = Field(default=300, ge=0, description="train questions given LM supervision")
    answer_k: int = Field(default=3, ge=1, description="passages given to the generator")
    context_passages: tuple[int, ...] = Field(
        default=(1, 3, 5), description="context stage: passages per prompt to choose among"
    )
    context_questions: int = Field(
        default=30, ge=1, description="context stage: train questions answered per choice"
    )
    stages: tuple[StageName, ...] = STAGE_ORDER
    isolated: bool = True
    report_answers: int | None = Field(
        default=None, ge=1, description="test questions answered in the report"
    )

    @field_validator("folds")
    @classmethod
    def _folds(cls, v: int) -> int:
        if v == 1:
            raise ValueError("one fold cannot hold anything out; use 0 (a dev split) or 2 or more")
        return v


def for_pipeline(settings: TuneSettings, config: PipelineConfig) -> TuneSettings:
    """`feedback_version` "current" made concrete: the version of the pipeline tune starts from,
    the one `ragsys serve` recorded its answers against (later stages change the version)."""
    version = resolve_version(settings.feedback_version, config.version())
    return settings.model_copy(update={"feedback_version": version})
