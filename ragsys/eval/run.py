"""Scoring one pipeline on one eval split: the body of `ragsys eval`, apart from the CLI.

Retrieval is scored for every question with gold documents; answers (and labels) only when
the pipeline was built with its generator. `finish_report` then writes the run JSON and HTML.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ragsys.eval.answering import LabelRule, generate_and_score
from ragsys.eval.evalset import EvalItem
from ragsys.eval.retrieval import score_retrieval, search_items
from ragsys.pipeline import Pipeline
from ragsys.progress import Progress, counter, no_progress

PerQuery = dict[str, dict[str, float]]


def evaluate(
    pipeline: Pipeline,
    items: Sequence[EvalItem],
    *,
    split: str,
    k: int | None = None,
    label_rule: LabelRule = "constrained",
    progress: Progress = no_progress,
) -> tuple[dict[str, Any], PerQuery]:
    """The run record's fields and per-question metrics. With a generator in `pipeline`, each
    question is answered from its first `k` hits (the pipeline's `top_k` when None)."""
    started = time.monotonic()
    tick = counter(progress, f"search ({split})", len(items))
    hits = search_items(pipeline, items, on_progress=tick)
    result, per_query = score_retrieval(items, hits)
    result["seconds_search"] = round(time.monotonic() - started, 3)
    if pipeline.generator is None:
        return result, per_query
    answer_pq, extra = generate_and_score(
        pipeline.generator, items, hits, k or pipeline.config.top_k, label_rule,
        on_progress=counter(progress, f"generate ({split})", len(items)),
    )  # fmt: skip
    for qid, values in answer_pq.items():
        per_query.setdefault(qid, {}).update(values)
    result.update(extra)
    return result, per_query
