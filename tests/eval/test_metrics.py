from __future__ import annotations

import ir_measures
import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.eval.metrics import (
    doc_ranking,
    items_to_qrels,
    normalize_ranking,
    retrieval_metrics,
    to_ir_measure,
)
from ragsys.types import Chunk, Hit

QRELS = {"q1": {"d1": 1, "d4": 1}, "q2": {"d2": 2, "d3": 1}, "q3": {"d9": 1}}
RUN = {
    "q1": [("d1", 3.0), ("d2", 2.5), ("d3", 1.0), ("d4", 0.5)],
    "q2": [("d5", 9.0), ("d3", 8.0), ("d2", 7.0)],
    "q3": [("d7", 1.0), ("d8", 0.9), ("d9", 0.8)],
}
MEASURES = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "precision@2", "map")


def test_matches_ir_measures_directly() -> None:
    result = retrieval_metrics(RUN, QRELS, MEASURES)
    run = {q: dict(r) for q, r in RUN.items()}
    ir = [to_ir_measure(m) for m in MEASURES]
    expected = ir_measures.calc_aggregate(ir, QRELS, run)
    for name, measure in zip(MEASURES, ir, strict=True):
        assert result.means[name] == pytest.approx(expected[measure])
    for metric in ir_measures.iter_calc(ir, QRELS, run):
        assert result.per_query[MEASURES[ir.index(metric.measure)]][metric.query_id] == pytest.approx(
            metric.value
        )
    assert result.n == 3


def test_known_values() -> None:
    result = retrieval_metrics(RUN, QRELS)
    assert result.per_query["mrr@10"] == {"q1": 1.0, "q2": 0.5, "q3": pytest.approx(1 / 3)}
    assert result.per_query["recall@10"]["q1"] == 1.0


def test_missing_or_empty_ranking_scores_zero_and_counts() -> None:
    result = retrieval_metrics({"q1": [("d1", 1.0)], "q2": []}, QRELS)
    assert result.n == 3
    assert result.per_query["ndcg@10"]["q2"] == 0.0 and result.per_query["ndcg@10"]["q3"] == 0.0
    assert result.means["mrr@10"] == pytest.approx(1 / 3)


def test_nothing_retrieved_at_all_is_zero_not_an_error() -> None:
    result = retrieval_metrics({}, QRELS)
    assert result.means == {m: 0.0 for m in result.measures}


def test_queries_without_judgements_are_ignored() -> None:
    result = retrieval_metrics({"q1": [("d1", 1.0)], "extra": [("d1", 1.0)]}, {"q1": {"d1": 1}, "empty": {}})
    assert result.n == 1 and set(result.per_query["ndcg@10"]) == {"q1"}


def test_no_judged_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to score"):
        retrieval_metrics(RUN, {"q1": {}})


def test_unknown_measure_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown measure 'bleu@4'.*ndcg"):
        retrieval_metrics(RUN, QRELS, ("bleu@4",))


def test_ties_keep_the_given_order() -> None:
    run, qrels = {"q": [("b", 1.0), ("a", 1.0)]}, {"q": {"a": 1}}
    direct = ir_measures.calc_aggregate([to_ir_measure("mrr@10")], qrels, {"q": dict(run["q"])})
    assert list(direct.values()) == [1.0]  # trec_eval reorders the tie by doc id
    assert retrieval_metrics(run, qrels, ("mrr@10",)).means["mrr@10"] == 0.5


def test_repeated_doc_counts_at_its_best_rank() -> None:
    ranking = [("x", 0.9), ("x", 0.8), ("y", 0.7)]
    assert normalize_ranking(ranking, {"y"}) == {"x": 2.0, "y": 1.0}


def test_glob_gold_counts_once_at_the_first_match() -> None:
    docs = "docs/2022 Q3 AAPL.pdf", "docs/2023 Q1 AAPL.pdf", "docs/2023 Q3 MSFT.pdf", "docs/2023 Q2 AAPL.pdf"
    ranking = [(docs[2], 4.0), (docs[0], 3.0), (docs[1], 2.0), (docs[3], 1.0)]
    assert normalize_ranking(ranking, {"*AAPL*"}) == {docs[2]: 2.0, "*AAPL*": 1.0}
    result = retrieval_metrics({"q": ranking}, {"q": {"*AAPL*": 1}})
    assert result.per_query["mrr@10"]["q"] == 0.5
    assert result.per_query["recall@10"]["q"] == 1.0  # later AAPL filings neither help nor hurt
    assert result.per_query["ndcg@10"]["q"] == pytest.approx(1 / 1.5849625007211563)


def test_path_suffix_gold_matches_full_path() -> None:
    ranking = [("/data/docs/b.pdf", 2.0), ("/data/docs/a.pdf", 1.0)]
    result = retrieval_metrics({"q": ranking}, {"q": {"a.pdf": 1}}, ("mrr@10",))
    assert result.means["mrr@10"] == 0.5


def test_overlapping_globs_each_take_a_distinct_document() -> None:
    ranking = [("2023 Q3 AAPL.pdf", 2.0), ("2022 Q3 AAPL.pdf", 1.0)]
    assert normalize_ranking(ranking, ["*AAPL*", "*Q3*"]) == {"*AAPL*": 2.0, "*Q3*": 1.0}


def test_items_to_qrels_levels_grades_and_glob_expansion() -> None:
    items = [
        EvalItem(id="a", question="?", split="test", gold_doc_ids=("d1", "d2"), meta={"grades": {"d1": 2}}),
        EvalItem(id="b", question="?", split="test", gold_doc_ids=("*AAPL*",), gold_chunk_ids=("c1",)),
        EvalItem(id="c", question="?", split="test"),
    ]
    assert items_to_qrels(items) == {"a": {"d1": 2, "d2": 1}, "b": {"*AAPL*": 1}}
    assert items_to_qrels(items, level="chunk") == {"b": {"c1": 1}}
    corpus = ["x/2023 Q3 AAPL.pdf", "x/2023 Q3 MSFT.pdf", "x/2022 Q3 AAPL.pdf", "d1", "d2"]
    expanded = items_to_qrels(items, corpus_ids=corpus)
    assert expanded["b"] == {"x/2022 Q3 AAPL.pdf": 1, "x/2023 Q3 AAPL.pdf": 1}
    with pytest.raises(ValueError, match="'\\*AAPL\\*' matches no document"):
        items_to_qrels(items, corpus_ids=["d1"])


def test_by_query_and_doc_ranking() -> None:
    result = retrieval_metrics(RUN, QRELS, ("mrr@10", "recall@10"))
    assert result.by_query()["q2"] == {"mrr@10": 0.5, "recall@10": 1.0}
    chunk = Chunk(
        id="c", doc_id="d", source="s", text="t", page_start=1, page_end=1, start=0, end=1, hash="h"
    )
    assert doc_ranking([Hit(chunk=chunk, score=0.5, source="bm25")]) == [("d", 0.5)]
