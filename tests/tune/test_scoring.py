"""How tune judges the ranking stages: document nDCG@10, or the figures the generator will read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.eval.retrieval import score_retrieval, search_all
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.tune.scoring import EVIDENCE, RETRIEVAL, Scorer, retrieval_metric


def _item(i: int, answer: str | None, gold: bool = True) -> EvalItem:
    return EvalItem(
        id=f"q{i}", question="q?", split="train", answer=answer, gold_doc_ids=("d",) if gold else ()
    )


def test_retrieval_metric_is_evidence_when_most_references_state_figures() -> None:
    figures = [_item(i, f"It was ${i + 100} million.") for i in range(3)]
    words = [_item(i + 3, "It rose.") for i in range(3)]
    assert retrieval_metric([*figures, *words]) == EVIDENCE  # half state figures
    assert retrieval_metric([*figures[:2], *words]) == RETRIEVAL
    assert retrieval_metric([_item(9, None), _item(8, None)]) == RETRIEVAL  # claims, no answers
    # questions without gold documents do not count either way
    assert (
        retrieval_metric([*words[:1], *(_item(10 + i, "$500 million", gold=False) for i in range(5))])
        == RETRIEVAL
    )
    assert retrieval_metric([]) == RETRIEVAL


def test_evidence_scores_figure_questions_by_what_the_passages_state(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig
) -> None:
    root, items = built
    arm = next(it for it in items if it.question == "How much does the picking arm lift?")
    stated = arm.model_copy(update={"id": "stated", "answer": "Twelve kilograms."})  # no figure
    missing = arm.model_copy(update={"id": "missing", "answer": "It lifts 12.5 kg."})  # not in the corpus
    scorer = Scorer(answer_k=3)
    try:
        ndcg = scorer.score(tiny_pipeline, root / "index", [stated, missing], RETRIEVAL)
        evidence = scorer.score(tiny_pipeline, root / "index", [stated, missing], EVIDENCE)
    finally:
        scorer.close()
    assert ndcg["missing"] > 0 and evidence["missing"] == 0.0  # right document, figure not stated
    assert evidence["stated"] == ndcg["stated"]  # no figure in the reference: nDCG@10 as before


def test_score_retrieval_reports_figure_recall_where_the_reference_states_figures(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig
) -> None:
    root, items = built
    index = Index.open(root / "index")
    try:
        chosen = [
            items[0].model_copy(update={"answer": "It lifts 12.5 kg."}),
            items[1].model_copy(update={"answer": "Every four thousand hours."}),
        ]
        _, per_query = score_retrieval(
            chosen, search_all(tiny_pipeline.build(index), [it.question for it in chosen])
        )
    finally:
        index.close()
    assert per_query[chosen[0].id]["figure_recall@5"] == pytest.approx(0.0)
    assert per_query[chosen[0].id]["figure_recall@10"] == pytest.approx(0.0)
    assert "figure_recall@5" not in per_query[chosen[1].id]
