"""Post-training a cross-encoder reranker; `check` then decides on dev whether it is used.

A cross-encoder started from a bi-encoder (the bundled MiniLM) has a random head, and a
naive epoch on a few hundred labels ranks far worse than the fused list it reranks (measured
on SciFact: nDCG@10 0.19 with BCE, 0.47 listwise, against 0.686 for no reranker). So training
is only half of the job; the other half (`ragsys.train.reranker.check`) reranks the pipeline's
own candidates for the dev questions, picks how much of the retrieval score to mix back in
(`CrossEncoderConfig.interpolate`) by dev nDCG@10, and keeps the reranker only if some weight
beats no reranker at all.

Losses are sentence-transformers' own (chosen by name from `LOSSES`, never by `if/elif`):

* `listwise`: softmax cross-entropy over the positive, its mined hard negatives and a few other
  questions' positives (ST's cross-encoder `MultipleNegativesRankingLoss` on raw logits) -- the
  "localized contrastive estimation" of Gao et al. 2021, trained on the retriever's own mistakes.
* `bce`: pointwise `BinaryCrossEntropyLoss`, positives up-weighted by the negatives per positive.

Training and inference build the passage side with `rerank.passage_text`, so they see the same text.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.rerank import CrossEncoderConfig, passage_text
from ragsys.train.budget import BudgetCallback, Progress, TimeBudget, seed_everything
from ragsys.train.examples import TrainExample
from ragsys.train.fit import FitStats, Schedule, fit
from ragsys.train.parallel import current_world
from ragsys.train.reranker.check import check_on_dev, decide
from ragsys.train.reranker.config import RerankerTrainConfig, RerankerTrainResult

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

# config.py names PipelineConfig for type checkers only; the result is made here.
RerankerTrainResult.model_rebuild(_types_namespace={"PipelineConfig": PipelineConfig})

# --- losses and their columns ---------------------------------------------------------------

Columns = dict[str, list[Any]]


class LossSpec(NamedTuple):
    columns: Callable[[Sequence[TrainExample], int], tuple[Columns, int]]
    build: Callable[[CrossEncoder, RerankerTrainConfig], torch.nn.Module]
    # Losses that treat other rows' passages as negatives must not meet the same text twice in a
    # batch (a second gold passage of the same question would be punished as a negative).
    no_duplicates: bool


def padded_negatives(ex: TrainExample, n: int) -> list[str]:
    """Exactly `n` negative passages, cycling when fewer were mined (small corpora run short)."""
    texts = [passage_text(c) for c in ex.negatives]
    return list(itertools.islice(itertools.cycle(texts), n))


def listwise_columns(examples: Sequence[TrainExample], n: int) -> tuple[Columns, int]:
    """query / positive / negative_1..n; the loss needs the same number of columns in every row."""
    cols: Columns = {"query": [], "positive": []} | {f"negative_{j + 1}": [] for j in range(n)}
    dropped = 0
    for ex in examples:
        if not ex.negatives:
            dropped += 1
            continue
        cols["query"].append(ex.query)
        cols["positive"].append(passage_text(ex.positive))
        for j, text in enumerate(padded_negatives(ex, n)):
            cols[f"negative_{j + 1}"].append(text)
    return cols, dropped


def pointwise_columns(examples: Sequence[TrainExample], n: int) -> tuple[Columns, int]:
    """One (query, passage, label) row per passage: 1 for the positive, 0 for up to `n` negatives."""
    cols: Columns = {"query": [], "passage": [], "label": []}
    dropped = 0
    for ex in examples:
        if not ex.negatives:
            dropped += 1
            continue
        for chunk, label in [(ex.positive, 1.0), *((c, 0.0) for c in ex.negatives[:n])]:
            cols["query"].append(ex.query)
            cols["passage"].append(passage_text(chunk))
            cols["label"].append(label)
    return cols, dropped


def _listwise_loss(model: CrossEncoder, config: RerankerTrainConfig) -> torch.nn.Module:
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    # Raw logits, no sigmoid-times-scale: inference ranks by the raw logit, so train that.
    return MultipleNegativesRankingLoss(
        model, num_negatives=config.in_batch_negatives, scale=1, activation_fn=None
    )


def _bce_loss(model: CrossEncoder, config: RerankerTrainConfig) -> torch.nn.Module:
    import torch
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    # One positive per n negatives: weigh positives up so the head does not learn "always no".
    return BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(config.n_negatives)))


LOSSES: dict[str, LossSpec] = {
    "listwise": LossSpec(listwise_columns, _listwise_loss, no_duplicates=True),
    "bce": LossSpec(pointwise_columns, _bce_loss, no_duplicates=False),
}


# --- training -------------------------------------------------------------------------------


def train_reranker(
    config: PipelineConfig,
    train: RerankerTrainConfig,
    examples: Sequence[TrainExample],
    *,
    out: Path,
    dev: Sequence[EvalItem] = (),
    search: Pipeline | None = None,
    progress: Progress | None = None,
    dev_progress: Progress | None = None,
    on_dev_scores: Callable[[Path, Mapping[tuple[str, str], float]], None] | None = None,
) -> RerankerTrainResult:
    """Trains a cross-encoder into `out/model` (checkpoints in `out/checkpoints`; a second call with
    the same `out` resumes), then keeps it in the returned pipeline only if it helps on `dev`.

    Example:
        >>> r = train_reranker(cfg, RerankerTrainConfig(), examples, out=Path("runs/rr"),
        ...                    dev=dev_items, search=cfg.build(index))  # doctest: +SKIP
        >>> r.used, r.dev.without, r.dev.with_best  # doctest: +SKIP
        (True, 0.686, 0.702)
    """
    if dev and search is None:
        raise ValueError("checking the reranker on dev needs `search` (the pipeline to rerank)")
    t0 = time.monotonic()
    seed_everything(train.seed)
    spec = LOSSES[train.loss]
    cols, dropped = spec.columns(examples, train.n_negatives)
    if len(cols["query"]) < 2:
        raise ValueError(
            f"only {len(cols['query'])} usable training examples (each needs a hard negative); need 2+"
        )
    model, fit = fit_cross_encoder(train, cols, spec, out / "checkpoints", progress)
    model_dir = out / "model"
    world = current_world()
    if world.main:  # data-parallel (ragsys.train.parallel): every process holds the same weights
        model.save_pretrained(str(model_dir), safe_serialization=True)
    world.barrier()
    model.eval()
    keep = None if on_dev_scores is None else (lambda scores: on_dev_scores(model_dir, scores))
    check = (
        check_on_dev(dev, search, model, train, dev_progress, keep) if dev and search is not None else None
    )
    used, weight = decide(check, train)
    reranker = CrossEncoderConfig(
        model=str(model_dir), top_n=train.top_n, max_length=train.max_length, interpolate=weight or 0.0
    )
    return RerankerTrainResult(
        model_dir=model_dir,
        pipeline=config.model_copy(update={"reranker": reranker}) if used else config,
        used=used,
        checked=check is not None,
        interpolate=weight if used else None,
        dev=check,
        examples=len(cols["query"]),
        dropped=dropped,
        minutes=round((time.monotonic() - t0) / 60, 2),
        **fit._asdict(),
    )


def fit_cross_encoder(
    train: RerankerTrainConfig, cols: Columns, spec: LossSpec, ckpt_dir: Path, progress: Progress | None
) -> tuple[CrossEncoder, FitStats]:
    """sentence-transformers' cross-encoder trainer with the budget, checkpoints and resume."""
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

    from ragsys.models import load_cross_encoder

    budget = BudgetCallback(TimeBudget(train.max_minutes))  # first: loading the model counts too
    model = load_cross_encoder(train.model, num_labels=1, max_length=train.max_length)
    stats = fit(
        CrossEncoderTrainer, CrossEncoderTrainingArguments, model,
        Schedule.of(train),
        ckpt_dir, budget, progress,
        train_dataset=Dataset.from_dict(cols), loss=spec.build(model, train),
        gradient_accumulation_steps=train.grad_accum,
        batch_sampler=BatchSamplers.NO_DUPLICATES if spec.no_duplicates else BatchSamplers.BATCH_SAMPLER,
    )  # fmt: skip
    return model, stats


# --- the dev check --------------------------------------------------------------------------
