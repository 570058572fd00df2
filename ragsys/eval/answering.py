"""End-to-end scoring: the generator answers eval questions, each answer is scored.

Per question (`ragsys.eval.answers.answer_metrics`): token F1, exact match and ROUGE-L against
the reference answer; citation precision/recall against the gold documents; abstention; and,
for labelled sets (PubMedQA's yes/no/maybe), whether the label is right. Corpus level: the
labels' macro-F1 with a bootstrap CI over questions (`ragsys.eval.stats`).

The label comes from a constrained final step by default (`ragsys.generate.labels`: the model
picks the most likely of the labels after its own answer); `label_rule="rule"` reads it off
the answer text instead (`ragsys.eval.answers.map_yes_no_maybe`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from ragsys.eval.answers import LABELS, answer_metrics, label_accuracy_and_macro_f1, map_yes_no_maybe
from ragsys.eval.evalset import EvalItem
from ragsys.eval.stats import bootstrap_macro_f1
from ragsys.protocols import Generator
from ragsys.types import Answer, Hit

LabelRule = Literal["constrained", "rule"]


def generate_and_score(
    generator: Generator,
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
        record = answer_record(item, answer)
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


PASSAGE_CHARS = 600  # of each passage kept in the run record, for the report's per-question view


def answer_record(item: EvalItem, answer: Answer) -> dict[str, Any]:
    """What the report shows for one question: the question, the answer and its citations, the
    reference and the passages the generator was given (document and pages)."""
    return {
        "question": item.question,
        "answer": answer.text,
        "reference": item.answer or "",
        "abstained": answer.abstained,
        "citations": [c.doc for c in answer.citations],
        "cited": [c.n for c in answer.citations],
        "passages": [
            {"n": n, "doc": h.chunk.doc_id, "page_start": h.chunk.page_start, "page_end": h.chunk.page_end,
             "text": h.chunk.text[:PASSAGE_CHARS]}
            for n, h in enumerate(answer.contexts, start=1)
        ],
    }  # fmt: skip


def _label(generator: Generator, answer: Answer, rule: LabelRule) -> str:
    if rule == "rule" or not answer.contexts:
        return map_yes_no_maybe(answer.text)
    return generator.choose(answer, LABELS)[0]
