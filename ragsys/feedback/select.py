"""Which feedback a training run learns from: one pipeline version's, each judgement once,
each question weighed once.

Answers are recorded against the `PipelineConfig.version()` that produced them, and a thumb
judges that answer, not the question: a thumb on another version's answer says nothing
reliable about the pipeline being tuned (KTO moves the likelihood of the judged text under
*this* model), so by default only the tuned pipeline's own records are used and the rest are
counted as skipped. `version="all"` pools every version on purpose (e.g. after a rename).

Duplicates: records identical in (answer, rating, revision) count once, and repeated thumbs on
one `answer_id` (the user changed their mind, or clicked twice) are one judgement: the last
rating, with the last revision given. Records without an answer id (imported from JSONL) are
keyed by what the user saw (question, answer, contexts).

Held out: records about a question the run is judged on (`held_out`, question keys: `ragsys
tune` passes its dev questions, or the held-out fold when cross-fitting) are left out and
counted, so a stage is never judged on a question whose thumb or revision it trained on.

Example:
    >>> picked = select_feedback(store.records(), config.version())  # doctest: +SKIP
    >>> picked.counts()["skipped_other_versions"]  # doctest: +SKIP
    3
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Hashable, Sequence

from ragsys.feedback.records import FeedbackRecord
from ragsys.types import Frozen

ALL_VERSIONS = "all"
CURRENT_VERSION = "current"


class FeedbackSelection(Frozen):
    """The records a run uses, and why the others were left out."""

    records: tuple[FeedbackRecord, ...]
    version: str  # the pipeline version kept, or "all"
    skipped_other_versions: int
    duplicates: int
    held_out: int = 0  # records about a question the run is judged on (module docstring)

    def counts(self) -> dict[str, int]:
        """What a run reports it consumed (thumbs, revisions) and what it left out."""
        return {
            "thumbs_up": sum(r.rating == "up" for r in self.records),
            "thumbs_down": sum(r.rating == "down" for r in self.records),
            "revisions": sum(r.revision is not None for r in self.records),
            "skipped_other_versions": self.skipped_other_versions,
            "duplicates": self.duplicates,
            "skipped_held_out": self.held_out,
        }


def resolve_version(choice: str, current: str) -> str:
    """`--feedback-version`: "current" is the version of the pipeline being tuned, "all" stays."""
    return current if choice == CURRENT_VERSION else choice


def select_feedback(
    records: Sequence[FeedbackRecord], version: str, held_out: Collection[str] = ()
) -> FeedbackSelection:
    """`version`'s records (every record for "all"), deduplicated, without those whose question
    key is in `held_out` (module docstring), in store order.

        >>> from ragsys.feedback.records import FeedbackRecord
        >>> rs = [FeedbackRecord(question=q, answer="a", rating="down", pipeline_version="v1")
        ...       for q in ("Q one?", "q  ONE?", "Q two?")]
        >>> picked = select_feedback(rs, "v1", held_out={question_key("Q two?")})
        >>> len(picked.records), picked.held_out
        (2, 1)
    """
    kept = [r for r in records if version == ALL_VERSIONS or r.pipeline_version == version]
    merged = _one_per_answer(_distinct(kept))
    blocked = set(held_out)
    judged = [r for r in merged if question_key(r.question) not in blocked]
    return FeedbackSelection(
        records=tuple(judged), version=version, skipped_other_versions=len(records) - len(kept),
        duplicates=len(kept) - len(merged), held_out=len(merged) - len(judged),
    )  # fmt: skip


def _answer_key(r: FeedbackRecord) -> Hashable:
    return ("id", r.answer_id) if r.answer_id else ("seen", r.question, r.answer, r.contexts)


def _distinct(records: Sequence[FeedbackRecord]) -> list[FeedbackRecord]:
    seen: set[Hashable] = set()
    out = []
    for r in records:
        key = (_answer_key(r), r.rating, r.revision)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _one_per_answer(records: Sequence[FeedbackRecord]) -> list[FeedbackRecord]:
    """Repeated judgements of one answer id -> its last record, carrying the last revision given.
    Records without an answer id are left apart (different users may have seen the same text)."""
    last: dict[Hashable, FeedbackRecord] = {}
    revision: dict[Hashable, str] = {}
    for r in records:
        if r.answer_id:
            last[r.answer_id] = r
            if r.revision is not None:
                revision[r.answer_id] = r.revision
    out = []
    for r in records:
        if not r.answer_id:
            out.append(r)
        elif last[r.answer_id] is r:
            out.append(r.model_copy(update={"revision": revision.get(r.answer_id)}))
    return out


def question_key(question: str) -> str:
    """Questions that differ only in case and spacing are one question."""
    return re.sub(r"\s+", " ", question).strip().casefold()


def question_weights(questions: Sequence[str], others: int = 0) -> list[float]:
    """1/n for each of a question's n judgements, then `others` weights of 1 (judgements that are
    one per question already), all scaled to average 1: a question judged ten times weighs as
    much as one judged once, and the loss keeps its scale."""
    keys = [question_key(q) for q in questions]
    n = Counter(keys)
    raw = [1.0 / n[k] for k in keys] + [1.0] * others
    if not raw:
        return []
    scale = len(raw) / sum(raw)
    return [w * scale for w in raw]
