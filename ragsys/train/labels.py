"""Calibrating the constrained label step: per-option offsets fitted on train answers.

The label step picks the option (PubMedQA's yes / no / maybe) the model finds most likely
after its own answer (`ragsys.generate.labels`). A small model's option scores carry a prior:
untuned SmolLM2 chose "no" for 343 of 500 PubMedQA test questions and "maybe" never, and a
generator stage judged on accuracy learned to answer "yes" to everything. `train_labels`
answers labelled train questions with the pipeline, records the options' raw scores, and fits
one additive offset per option (`fit_label_bias`) that maximizes label macro-F1, which a
collapse onto one label cannot raise. A seeded dev fraction of the train questions is held
out of the fit and scored with it, before and after; the test split is never read. The result
is the pipeline with `GeneratorConfig.label_bias` set.

Example:
    >>> result = train_labels(config, LabelTrainConfig(), items, index=index, out=out)  # doctest: +SKIP
    >>> result.dev_macro_f1_before, result.dev_macro_f1_after  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from ragsys.types import Frozen

if TYPE_CHECKING:
    from ragsys.eval.evalset import EvalItem
    from ragsys.index.reader import Index
    from ragsys.pipeline import PipelineConfig

Bias = tuple[tuple[str, float], ...]


class LabelTrainConfig(Frozen):
    options: tuple[str, ...] = ("yes", "no", "maybe")
    dev_fraction: float = Field(default=0.25, ge=0.0, lt=1.0, description="train questions held out to check")
    k: int | None = Field(default=None, ge=1, description="passages per question; None: the pipeline's top_k")
    limit: int | None = Field(default=200, ge=1, description="at most this many labelled train questions")
    seed: int = 0


class LabelTrainResult(Frozen):
    bias: Bias
    pipeline_dir: Path
    questions: int
    fit_macro_f1_before: float
    fit_macro_f1_after: float
    dev_macro_f1_before: float | None
    dev_macro_f1_after: float | None
    dev_questions: int
    dev_counts_before: dict[str, int]
    dev_counts_after: dict[str, int]


def macro_f1(pred: np.ndarray, gold: np.ndarray, m: int) -> float:
    """Macro-F1 over option indices 0..m-1 (a class never predicted nor gold scores 0)."""
    f1s = []
    for c in range(m):
        tp = float(np.sum((pred == c) & (gold == c)))
        denom = float(np.sum(pred == c) + np.sum(gold == c))
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def predict(scores: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Index of the highest biased score per row; ties go to the earlier option."""
    chosen: np.ndarray = np.argmax(scores + bias[None, :], axis=1)
    return chosen


def fit_label_bias(
    scores: Sequence[Sequence[float]] | np.ndarray,
    gold: Sequence[str],
    options: Sequence[str],
    rounds: int = 3,
) -> Bias:
    """Offsets (the first option's fixed at 0) that maximize macro-F1 of `predict` on these rows.

    Coordinate ascent: each round sets every other option's offset, in turn, to the value
    giving the highest macro-F1 among one per interval between the offsets at which some
    row's choice flips (and 0), ties to the smallest offset. Deterministic; offsets only move
    when they help.

        >>> fit_label_bias([[-0.1, -2.0], [-0.2, -1.9], [-1.0, -1.5]], ["yes", "yes", "no"], ["yes", "no"])
        (('yes', 0.0), ('no', 1.1))
    """
    s = np.asarray(scores, dtype=np.float64)
    m = len(options)
    if s.ndim != 2 or s.shape != (len(gold), m):
        raise ValueError(f"need one row of {m} scores per gold label, got shape {s.shape} for {len(gold)}")
    code = {o: i for i, o in enumerate(options)}
    g = np.array([code.get(x, -1) for x in gold])
    bias = np.zeros(m)
    best = macro_f1(predict(s, bias), g, m)
    for _ in range(rounds):
        moved = False
        for j in range(1, m):
            others = np.delete(s + bias[None, :], j, axis=1).max(axis=1)
            flips = np.unique(others - s[:, j])  # at bias_j = flip, option j ties a row's best
            # between two flips every offset makes the same choices: try the midpoints (the
            # widest margin), a step past either end, the current offset and none
            ends = [flips[0] - 0.05, flips[-1] + 0.05] if flips.size else []
            candidates = np.concatenate([[0.0, bias[j]], (flips[1:] + flips[:-1]) / 2, ends])
            for c in sorted(candidates, key=lambda v: (abs(v), v)):
                trial = bias.copy()
                trial[j] = c
                f1 = macro_f1(predict(s, trial), g, m)
                if f1 > best + 1e-12:
                    best, bias, moved = f1, trial, True
        if not moved:
            break
    return tuple((o, round(float(b), 6)) for o, b in zip(options, bias, strict=True))


def train_labels(
    config: PipelineConfig,
    train: LabelTrainConfig,
    items: Sequence[EvalItem],
    *,
    index: Index,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> LabelTrainResult:
    """Answers the labelled train questions, fits the offsets on all but a dev fraction, saves
    the pipeline with them (see the module docstring)."""
    from ragsys.eval.retrieval import search_items

    if config.generator is None:
        raise ValueError(f"pipeline {config.name!r} has no generator to calibrate")
    options = [o.lower() for o in train.options]
    questions = [it for it in items if (it.label or "").strip().lower() in options][: train.limit]
    if len(questions) < 2:
        raise ValueError(
            f"{len(questions)} train questions have one of the labels {options}: nothing to fit on"
        )
    raw = config.generator.model_copy(update={"label_bias": ()})
    generator = raw.build()
    k = train.k or config.top_k
    hits = search_items(config.build(index), questions, depth=k)
    rows: list[list[float]] = []
    for i, (item, found) in enumerate(zip(questions, hits, strict=True)):
        answer = generator.generate(item.question, list(found[:k]))
        rows.append(generator.choose(answer, options)[1] if answer.contexts else [0.0] * len(options))
        if progress is not None:
            progress(i + 1, len(questions))
    gold = [(it.label or "").strip().lower() for it in questions]
    return _finish(config, train, options, [it.id for it in questions], rows, gold, out)


def _finish(
    config: PipelineConfig,
    train: LabelTrainConfig,
    options: list[str],
    ids: list[str],
    rows: list[list[float]],
    gold: list[str],
    out: Path,
) -> LabelTrainResult:
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    random.Random(train.seed).shuffle(order)
    n_dev = int(train.dev_fraction * len(ids))
    dev, fit = sorted(order[:n_dev]), sorted(order[n_dev:])
    s, code = np.asarray(rows, dtype=np.float64), {o: i for i, o in enumerate(options)}
    g = np.array([code[x] for x in gold])
    bias = fit_label_bias(s[fit], [gold[i] for i in fit], options)
    vector = np.array([b for _, b in bias])
    zero = np.zeros(len(options))

    def f1(part: list[int], b: np.ndarray) -> float:
        return macro_f1(predict(s[part], b), g[part], len(options))

    def counts(part: list[int], b: np.ndarray) -> dict[str, int]:
        chosen = predict(s[part], b) if part else np.zeros(0, dtype=int)
        return {o: int(np.sum(chosen == i)) for i, o in enumerate(options)}

    config.with_generator("labels", label_bias=bias).save(out)
    return LabelTrainResult(
        bias=bias, pipeline_dir=out, questions=len(ids),
        fit_macro_f1_before=f1(fit, zero), fit_macro_f1_after=f1(fit, vector),
        dev_macro_f1_before=f1(dev, zero) if dev else None,
        dev_macro_f1_after=f1(dev, vector) if dev else None,
        dev_questions=len(dev), dev_counts_before=counts(dev, zero), dev_counts_after=counts(dev, vector),
    )  # fmt: skip
