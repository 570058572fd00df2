"""The stages of `ragsys tune`, in order, by name.

Joint, not isolated: every stage trains against what the stages before it produced. Hard
negatives for the retriever and the reranker are mined from the *current* pipeline; the
retriever and reranker also learn from the generator's likelihood of the reference answer
(LM supervision); the generator is fine-tuned on what the tuned retriever actually returns.
The retrieval stages are in `retrieval_stages`, the answer stages in `answer_stages`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragsys.eval.evalset import EvalItem
from ragsys.tune.answer_stages import context_stage, generator_stage, labels_stage, preference_stage
from ragsys.tune.context import Stage, with_reference
from ragsys.tune.retrieval_stages import (
    mixture_stage,
    reranker_stage,
    retriever_stage,
    scope_stage,
    synthetic_stage,
)

# Stages that produce data for later ones, not a candidate pipeline: never judged, so never
# cross-fitted.
DATA_STAGES = frozenset({"synthetic"})
# Stages judged on end-to-end answers: only questions with a reference answer or label can judge them.
ANSWER_STAGES = frozenset({"context", "labels", "generator", "preference"})

STAGES: dict[str, Stage] = {
    "scope": scope_stage,
    "synthetic": synthetic_stage,
    "retriever": retriever_stage,
    "reranker": reranker_stage,
    "mixture": mixture_stage,
    "context": context_stage,
    "labels": labels_stage,
    "generator": generator_stage,
    "preference": preference_stage,
}


def unjudgeable(name: str, judged_on: Sequence[EvalItem]) -> str | None:
    """Why stage `name` cannot be judged on `judged_on` (the dev split, or every non-test question
    when cross-fitting), said before it trains; None when it can be.

    Why: an answer stage is judged on questions with a reference answer or label. A feedback
    store of thumbs without revisions gives its thumbed-down questions none, so the 10-Q
    thumbs-only loop trained KTO for 19 minutes and then stopped with an error, having no dev
    question to score before and after."""
    if name not in ANSWER_STAGES or with_reference(judged_on):
        return None
    return (
        "no question it would be judged on has a reference answer or label (a thumb without a "
        "revision gives none), so nothing it trained could be kept"
    )
