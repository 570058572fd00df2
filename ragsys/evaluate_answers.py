"""End-to-end scoring: the generator's answers against reference answers and labels.

Per question: token F1, exact match and ROUGE-L against the reference answer; citation
precision/recall against the gold documents; abstention; and, for labelled sets
(PubMedQA's yes/no/maybe), whether the predicted label is right. Corpus level: the
labels' macro-F1 with a bootstrap CI over questions.

The label comes from a constrained final step by default (`ragsys.choose`: the model
picks the most likely of the labels after its own answer); `label_rule="rule"` reads
it off the answer text instead (`ragsys.eval.answers.map_yes_no_maybe`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ragsys.eval.answers import (
    citation_precision_recall,
    exact_match,
    label_accuracy_and_macro_f1,
    map_yes_no_maybe,
    rouge_l,
    token_f1,
)
from ragsys.evalset import EvalItem
from ragsys.generate import HFGenerator
from ragsys.types import Answer, Hit

LABELS = ("yes", "no", "maybe")
LabelRule = Literal["constrained", "rule"]


def answer_metrics(item: EvalItem, answer: Answer) -> dict[str, float]:
    out: dict[str, float] = {"abstained": float(answer.abstained)}
    if item.answer:
        out |= {
            "token_f1": token_f1(answer.text, item.answer),
            "exact_match": exact_match(answer.text, item.answer),
            "rouge_l": rouge_l(answer.text, item.answer),
        }
    if item.gold_doc_ids:
        cites = citation_precision_recall([c.doc for c in answer.citations], item.gold_doc_ids)
        out |= {"citation_precision": cites.precision, "citation_recall": cites.recall}
    return out


def generate_and_score(
    generator: HFGenerator,
    items: Sequence[EvalItem],
    hits: Sequence[Sequence[Hit]],
    k: int,
    label_rule: LabelRule = "constrained",
    on_progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Per-question metrics, and extras for the run record (answers, labels, macro-F1)."""
    per_query: dict[str, dict[str, float]] = {}
    answers: dict[str, dict[str, Any]] = {}
    preds: list[str] = []
    golds: list[str] = []
    for item, item_hits in zip(items, hits, strict=True):
        answer = generator.generate(item.question, list(item_hits[:k]))
        metrics = answer_metrics(item, answer)
        record: dict[str, Any] = {"answer": answer.text, "abstained": answer.abstained,
                                  "citations": [c.doc for c in answer.citations]}  # fmt: skip
        if item.label in LABELS:
            label = _label(generator, answer, label_rule)
            metrics["label_accuracy"] = float(label == item.label)
            record["label"] = label
            preds.append(label)
            golds.append(item.label)
        per_query[item.id] = metrics
        answers[item.id] = record
        if on_progress is not None:
            on_progress(1)
    extra: dict[str, Any] = {"answers": answers, "label_rule": label_rule}
    if preds:
        accuracy, macro = label_accuracy_and_macro_f1(preds, golds, LABELS)
        lo, hi = bootstrap_macro_f1(preds, golds)
        extra["metrics"] = {"label_macro_f1": macro}
        extra["label_macro_f1_ci95"] = [lo, hi]
        extra["label_counts"] = {lab: preds.count(lab) for lab in LABELS}
        extra["majority_class_accuracy"] = max(golds.count(lab) for lab in LABELS) / len(golds)
    return per_query, extra


def _label(generator: HFGenerator, answer: Answer, rule: LabelRule) -> str:
    if rule == "rule" or not answer.contexts:
        return map_yes_no_maybe(answer.text)
    return generator.choose(answer, LABELS)[0]


def bootstrap_macro_f1(
    preds: Sequence[str], golds: Sequence[str], n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of macro-F1, resampling questions (macro-F1 is not a mean)."""
    rng = np.random.default_rng(seed)
    n = len(preds)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        values.append(
            label_accuracy_and_macro_f1([preds[i] for i in idx], [golds[i] for i in idx], LABELS)[1]
        )
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def paired_macro_f1_delta(
    preds: Sequence[str],
    base_preds: Sequence[str],
    golds: Sequence[str],
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """macro-F1(preds) - macro-F1(base_preds) on the same questions, with a paired percentile
    bootstrap CI (both systems scored on each resample of the questions): (delta, lo, hi)."""

    def f1(p: Sequence[str], g: Sequence[str]) -> float:
        return label_accuracy_and_macro_f1(p, g, LABELS)[1]

    rng = np.random.default_rng(seed)
    n = len(golds)
    deltas = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        g = [golds[i] for i in idx]
        deltas.append(f1([preds[i] for i in idx], g) - f1([base_preds[i] for i in idx], g))
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return f1(preds, golds) - f1(base_preds, golds), float(lo), float(hi)
