"""The stages of `ragsys tune`, in order, by name.

Joint, not isolated: every stage trains against what the stages before it produced. Hard
negatives for the retriever and the reranker are mined from the *current* pipeline; the
retriever and reranker also learn from the generator's likelihood of the reference answer
(LM supervision); the generator is fine-tuned on what the tuned retriever actually returns.
The retrieval stages are in `retrieval_stages`, the answer stages in `answer_stages`.
"""

from __future__ import annotations

from ragsys.tune.answer_stages import context_stage, generator_stage, labels_stage, preference_stage
from ragsys.tune.context import Stage
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
