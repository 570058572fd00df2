"""Post-training a cross-encoder reranker, and checking on dev that it helps before it is used.

A cross-encoder started from a bi-encoder (the bundled MiniLM) has a random head, and a
naive epoch on a few hundred labels ranks far worse than the fused list it reranks (measured
on SciFact: nDCG@10 0.19 with BCE, 0.47 listwise, against 0.686 for no reranker). So training
is only half of this module; the other half reranks the pipeline's own candidates for the dev
questions, picks how much of the retrieval score to mix back in (`CrossEncoderConfig.interpolate`)
by dev nDCG@10, and keeps the reranker only if some weight beats no reranker at all.

Losses are sentence-transformers' own (chosen by name from `LOSSES`, never by `if/elif`):

* `listwise`: softmax cross-entropy over the positive, its mined hard negatives and a few other
  questions' positives (ST's cross-encoder `MultipleNegativesRankingLoss` on raw logits) -- the
  "localized contrastive estimation" of Gao et al. 2021, trained on the retriever's own mistakes.
* `bce`: pointwise `BinaryCrossEntropyLoss`, positives up-weighted by the negatives per positive.

Training and inference build the passage side with `rerank.passage_text`, so they see the same text.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from pydantic import Field

from ragsys.eval.evalset import EvalItem
from ragsys.eval.metrics import items_to_qrels, retrieval_metrics
from ragsys.eval.retrieval import retrieval_run
from ragsys.eval.stats import paired_randomization_test
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.rerank import CrossEncoderConfig, CrossEncoderReranker, PairScorer, passage_text
from ragsys.train.budget import (
    BudgetCallback,
    Progress,
    StepProgressCallback,
    TimeBudget,
    last_checkpoint,
    seed_everything,
)
from ragsys.train.mining.hard_negatives import TrainExample
from ragsys.types import Frozen, Hit

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

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


class DevCheck(Frozen):
    """Dev nDCG@10 of the candidates as retrieved (`without`) and reranked at each weight."""

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
    model.save_pretrained(str(model_dir), safe_serialization=True)
    model.eval()
    keep = None if on_dev_scores is None else (lambda scores: on_dev_scores(model_dir, scores))
    check = (
        check_on_dev(dev, search, model, train, dev_progress, keep) if dev and search is not None else None
    )
    used, weight = _decide(check, train)
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


class FitStats(NamedTuple):
    steps: int
    losses: tuple[float, ...]
    stopped_early: bool
    resumed_from: str | None


def fit_cross_encoder(
    train: RerankerTrainConfig, cols: Columns, spec: LossSpec, ckpt_dir: Path, progress: Progress | None
) -> tuple[CrossEncoder, FitStats]:
    """sentence-transformers' trainer with a checkpoint per epoch, resume and the time budget."""
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

    from ragsys.models import load_cross_encoder

    budget = BudgetCallback(TimeBudget(train.max_minutes))  # first: loading the model counts too
    model = load_cross_encoder(train.model, num_labels=1, max_length=train.max_length)
    resume = last_checkpoint(ckpt_dir)
    args = CrossEncoderTrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=train.epochs,
        per_device_train_batch_size=train.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.learning_rate,
        batch_sampler=BatchSamplers.NO_DUPLICATES if spec.no_duplicates else BatchSamplers.BATCH_SAMPLER,
        warmup_steps=train.warmup_ratio,  # transformers 5: a float below 1 is a fraction of all steps
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=10,
        seed=train.seed,
        data_seed=train.seed,
        report_to="none",
        disable_tqdm=progress is not None,
        use_cpu=model.device.type == "cpu",
    )
    callbacks: list[Any] = [budget] + ([StepProgressCallback(progress)] if progress is not None else [])
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(cols),
        loss=spec.build(model, train),
        callbacks=callbacks,
    )
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    losses = tuple(float(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    return model, FitStats(
        steps=int(output.global_step),
        losses=losses,
        stopped_early=budget.stopped_early,
        resumed_from=str(resume) if resume else None,
    )


# --- the dev check --------------------------------------------------------------------------


def _decide(check: DevCheck | None, train: RerankerTrainConfig) -> tuple[bool, float | None]:
    if check is None:  # nothing to check against: keep it, at the requested weight
        return True, train.interpolate if train.interpolate is not None else 0.0
    return check.best is not None, check.best


def choose_weight(
    without: float, by_weight: Sequence[tuple[float, float]], min_gain: float = 0.0
) -> float | None:
    """The weight with the best dev score if it beats no reranker by more than `min_gain`, else None.

    Ties go to the larger weight: more of the retrieval score is the safer of two equal choices.
    """
    if not by_weight:
        return None
    weight, score = max(by_weight, key=lambda ws: (ws[1], ws[0]))
    return weight if score > without + min_gain else None


def dev_ndcg(items: Sequence[EvalItem], runs: Sequence[Sequence[Hit]]) -> list[float]:
    """Document-level nDCG@10 per item (in order), as `ragsys eval` scores it."""
    result = retrieval_metrics(retrieval_run(items, runs), items_to_qrels(items), (DEV_MEASURE,))
    return [result.per_query[DEV_MEASURE][it.id] for it in items]


def check_on_dev(
    dev: Sequence[EvalItem],
    search: Pipeline,
    scorer: PairScorer,
    train: RerankerTrainConfig,
    progress: Progress | None = None,
    on_scores: Callable[[Mapping[tuple[str, str], float]], None] | None = None,
) -> DevCheck | None:
    """Reranks the pipeline's own candidates (its reranker switched off) for every dev question that
    has gold documents, once, then scores each weight through `CrossEncoderReranker` itself, so the
    choice is made on exactly what inference will compute. None when no question has gold."""
    items = [it for it in dev if it.gold_doc_ids]
    if not items:
        return None
    base = dataclasses.replace(
        search, reranker=None, config=search.config.model_copy(update={"reranker": None})
    )
    questions = [it.question for it in items]
    heads = base.search_many(questions, train.top_n)
    table = ScoreTable.of(questions, heads, scorer, train, progress)
    if on_scores is not None:
        on_scores(table.scores)
    weights = (train.interpolate,) if train.interpolate is not None else train.grid
    per_weight = {w: dev_ndcg(items, _reranked(questions, heads, table, train, w)) for w in weights}
    base_scores = dev_ndcg(items, heads)
    without = statistics.fmean(base_scores)
    by_weight = tuple((w, statistics.fmean(v)) for w, v in per_weight.items())
    best = choose_weight(without, by_weight, train.min_gain)
    return DevCheck(
        questions=len(items), without=without, by_weight=by_weight, best=best,
        with_best=dict(by_weight)[best] if best is not None else None,
        p_value=paired_randomization_test(per_weight[best], base_scores) if best is not None else None,
    )  # fmt: skip


def _reranked(
    questions: Sequence[str], heads: Sequence[Sequence[Hit]], table: PairScorer, train: RerankerTrainConfig,
    weight: float,
) -> list[list[Hit]]:  # fmt: skip
    rc = CrossEncoderConfig(model="(dev)", top_n=train.top_n, max_length=train.max_length, interpolate=weight)
    return CrossEncoderReranker(rc, table).rerank_many(questions, heads, k=train.top_n)


class ScoreTable:
    """A `PairScorer` that answers from scores computed once, so each weight costs no model calls."""

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self._scores = scores

    @property
    def scores(self) -> Mapping[tuple[str, str], float]:
        return self._scores

    @classmethod
    def of(
        cls, questions: Sequence[str], heads: Sequence[Sequence[Hit]], scorer: PairScorer,
        train: RerankerTrainConfig, progress: Progress | None = None, step: int = 16,
    ) -> ScoreTable:  # fmt: skip
        """Raw cross-encoder logits for every (question, candidate) pair, via the inference path,
        `step` questions at a time so `progress` (questions done, total) can follow: on a CPU a
        dev set's top-50 lists take minutes."""
        rc = CrossEncoderConfig(model="(dev)", top_n=train.top_n, max_length=train.max_length)
        reranker = CrossEncoderReranker(rc, scorer)
        scored: list[list[Hit]] = []
        for i in range(0, len(questions), step):
            scored += reranker.rerank_many(questions[i : i + step], heads[i : i + step], k=train.top_n)
            if progress is not None:
                progress(len(scored), len(questions))
        return cls(
            {(q, passage_text(h.chunk)): h.score for q, hs in zip(questions, scored, strict=True) for h in hs}
        )

    def predict(
        self,
        inputs: list[tuple[str, str]],
        *,
        batch_size: int,
        show_progress_bar: bool,
        activation_fn: Callable[..., Any] | None,
        convert_to_numpy: bool,
    ) -> Any:
        return np.array([self._scores[pair] for pair in inputs], dtype=np.float64)
