"""Grounded refusal, calibrated: the threshold above which the generator abstains unasked.

The generator is told to reply with `abstain_text` when its passages do not answer, and small
models never do (0 of 50 such questions, measured). But its likelihood of that reply still
carries the signal: it rises when no passage is about the question. `train_abstention` measures
that likelihood (`LocalGenerator.abstain_logprob`) on the train questions twice, once with
their own retrieval and once with their gold documents removed from the index's reach
(`eval.convert.with_unanswerable`), labels a question unanswerable when its passages hold no
gold document, and picks the threshold that abstains on as many unanswerable questions as it
can while abstaining on at most `max_answerable` of the answerable ones. A seeded dev fraction
of the train questions is held out of the choice and scored with it; the test split is never
read. The result is the pipeline with `GeneratorConfig.abstain_threshold` set.

Example:
    >>> train = AbstentionTrainConfig()
    >>> result = train_abstention(config, train, items, index=index, out=Path("tuned"))  # doctest: +SKIP
    >>> result.dev_unanswerable_abstained, result.dev_answerable_abstained  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from ragsys.docids import doc_matches
from ragsys.types import Frozen

if TYPE_CHECKING:
    from ragsys.eval.evalset import EvalItem
    from ragsys.index.reader import Index
    from ragsys.pipeline import PipelineConfig


class AbstentionTrainConfig(Frozen):
    max_answerable: float = Field(default=0.1, ge=0.0, le=1.0, description="abstention allowed on answerable")
    dev_fraction: float = Field(default=0.25, ge=0.0, lt=1.0, description="train questions held out to check")
    k: int | None = Field(default=None, ge=1, description="passages per question; None: the pipeline's top_k")
    limit: int | None = Field(default=None, ge=1, description="at most this many train questions (and twins)")
    seed: int = 0


class Scored(Frozen):
    id: str
    score: float  # mean per-token log-probability of the abstention reply
    unanswerable: bool  # no gold document among the passages (a twin, or a retrieval miss)


class AbstentionTrainResult(Frozen):
    threshold: float
    pipeline_dir: Path
    questions: int
    train_unanswerable_abstained: float
    train_answerable_abstained: float
    dev_unanswerable_abstained: float | None
    dev_answerable_abstained: float | None
    dev_questions: int


def choose_threshold(scored: Sequence[Scored], max_answerable: float) -> float:
    """The lowest threshold (most abstention on unanswerable questions) that abstains on at most
    `max_answerable` of the answerable ones; ties keep the higher (more cautious) threshold."""
    answerable = sorted((s.score for s in scored if not s.unanswerable), reverse=True)
    if not answerable:
        return min((s.score for s in scored), default=0.0)
    allowed = int(max_answerable * len(answerable))  # answerable questions that may be refused
    # Abstain when score >= threshold: just above the (allowed + 1)-th highest answerable score.
    return float(answerable[allowed]) + 1e-6 if allowed < len(answerable) else float(answerable[-1])


def rates(scored: Sequence[Scored], threshold: float) -> tuple[float | None, float | None]:
    """(abstention rate on unanswerable, on answerable) at `threshold`; None where there are none."""

    def rate(group: list[Scored]) -> float | None:
        return sum(s.score >= threshold for s in group) / len(group) if group else None

    return rate([s for s in scored if s.unanswerable]), rate([s for s in scored if not s.unanswerable])


def train_abstention(
    config: PipelineConfig,
    train: AbstentionTrainConfig,
    items: Sequence[EvalItem],
    *,
    index: Index,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> AbstentionTrainResult:
    """Scores the train questions and their unanswerable twins, picks the threshold, saves the
    pipeline with it (see the module docstring)."""
    from ragsys.eval.convert import with_unanswerable
    from ragsys.eval.retrieval import search_items
    from ragsys.generate.local import LocalGenerator

    if config.generator is None:
        raise ValueError(f"pipeline {config.name!r} has no generator to calibrate")
    generator = config.generator.model_copy(update={"abstain_threshold": None}).build()
    if not isinstance(generator, LocalGenerator):
        raise ValueError("grounded refusal reads the model's log-probabilities: use a local backend")
    questions = [it for it in items if it.gold_doc_ids and it.answerable][: train.limit]
    if not questions:
        raise ValueError("no train question names gold documents: nothing to calibrate on")
    both = with_unanswerable(questions)
    hits = search_items(config.build(index), both, depth=train.k or config.top_k)
    k = train.k or config.top_k
    scored: list[Scored] = []
    for i, (item, found) in enumerate(zip(both, hits, strict=True)):
        passages = found[:k]
        golds = item.gold_doc_ids
        missed = not any(doc_matches(g, h.chunk.doc_id) for g in golds for h in passages)
        prompt = generator.prompt(item.question, passages)
        scored.append(Scored(id=item.id, score=generator.abstain_logprob(prompt), unanswerable=missed))
        if progress is not None:
            progress(i + 1, len(both))
    return _finish(config, train, scored, out)


def _finish(
    config: PipelineConfig, train: AbstentionTrainConfig, scored: list[Scored], out: Path
) -> AbstentionTrainResult:
    twins = sorted({s.id.split("~", 1)[0] for s in scored})
    random.Random(train.seed).shuffle(twins)
    dev_ids = set(twins[: int(train.dev_fraction * len(twins))])
    fit = [s for s in scored if s.id.split("~", 1)[0] not in dev_ids]
    dev = [s for s in scored if s.id.split("~", 1)[0] in dev_ids]
    threshold = choose_threshold(fit, train.max_answerable)
    fit_u, fit_a = rates(fit, threshold)
    dev_u, dev_a = rates(dev, threshold)
    config.with_generator("refusal", abstain_threshold=threshold).save(out)
    return AbstentionTrainResult(
        threshold=threshold, pipeline_dir=out, questions=len(scored),
        train_unanswerable_abstained=fit_u or 0.0, train_answerable_abstained=fit_a or 0.0,
        dev_unanswerable_abstained=dev_u, dev_answerable_abstained=dev_a, dev_questions=len(dev),
    )  # fmt: skip
