"""The reranker's dev check: it is kept only when it beats no reranker on held-out questions."""

from __future__ import annotations

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.train.reranker.check import ScoreTable, check_on_dev, choose_weight
from ragsys.train.reranker.config import RerankerTrainConfig
from tests.fixtures.factories import make_hit
from tests.fixtures.rerank_dev import FakeScorer, FixedRetriever, dev_setup


def test_choose_weight_needs_to_beat_no_reranker() -> None:
    assert choose_weight(0.5, [(0.0, 0.4), (0.5, 0.6), (0.9, 0.55)]) == 0.5
    assert choose_weight(0.5, [(0.0, 0.4), (0.5, 0.5)]) is None  # a tie is not a gain
    assert choose_weight(0.5, [(0.3, 0.52)], min_gain=0.05) is None
    assert choose_weight(0.5, [(0.2, 0.7), (0.6, 0.7)]) == 0.6  # ties: more retrieval score
    assert choose_weight(0.5, []) is None


def test_dev_check_keeps_a_reranker_that_knows_the_gold() -> None:
    items, search, gold = dev_setup()
    oracle = FakeScorer(lambda q, p: 1.0 if gold[q] == p else 0.0)
    check = check_on_dev(items, search, oracle, RerankerTrainConfig())
    assert check is not None and check.questions == 6
    assert check.without == pytest.approx(0.5)  # gold at rank 3: 1 / log2(4)
    assert check.best is not None and check.with_best == pytest.approx(1.0)
    assert check.p_value is not None and check.p_value < 0.05  # six of six questions improved
    assert oracle.calls == 1  # scored once; every weight reuses the scores


def test_dev_check_reports_progress_and_scores_the_same_in_slices() -> None:
    items, search, gold = dev_setup()
    oracle = FakeScorer(lambda q, p: 1.0 if gold[q] == p else 0.0)
    seen: list[tuple[int, int]] = []
    check = check_on_dev(items, search, oracle, RerankerTrainConfig(), lambda d, t: seen.append((d, t)))
    assert check is not None and seen == [(6, 6)]
    questions = [it.question for it in items]
    heads = search.search_many(questions, RerankerTrainConfig().top_n)
    whole = ScoreTable.of(questions, heads, oracle, RerankerTrainConfig())
    seen.clear()
    sliced = ScoreTable.of(
        questions, heads, oracle, RerankerTrainConfig(), lambda d, t: seen.append((d, t)), step=4
    )
    assert seen == [(4, 6), (6, 6)] and sliced._scores == whole._scores


def test_dev_check_drops_a_reranker_that_does_not_help() -> None:
    items, search, gold = dev_setup()
    adversary = FakeScorer(lambda q, p: -1.0 if gold[q] == p else 0.0)
    check = check_on_dev(items, search, adversary, RerankerTrainConfig())
    assert check is not None and check.best is None and check.with_best is None and check.p_value is None
    assert max(score for _, score in check.by_weight) <= check.without


def test_dev_check_tries_only_a_fixed_weight_and_skips_unjudged_items() -> None:
    items, search, gold = dev_setup()
    oracle = FakeScorer(lambda q, p: 1.0 if gold[q] == p else 0.0)
    unjudged = EvalItem(id="x", question="question 0?", split="dev")
    check = check_on_dev([*items, unjudged], search, oracle, RerankerTrainConfig(interpolate=0.3))
    assert check is not None and check.questions == 6
    assert [w for w, _ in check.by_weight] == [0.3]
    assert check_on_dev([unjudged], search, oracle, RerankerTrainConfig()) is None


def test_dev_check_judges_by_figure_recall_when_every_candidate_is_in_the_gold_filing() -> None:
    """Filings after scoping: every candidate is in the gold document, so nDCG@10 ties whatever
    the order; with `dev_evidence_k` the check sees the reranker lift the figure-stating chunk."""
    items, runs = [], {}
    for i in range(6):
        q = f"question {i}?"
        texts = [f"filing {i} passage {r}" for r in range(5)]
        texts[3] = f"|Net sales|{1000 + i}.5|"
        runs[q] = [make_hit(f"c{i}-{r}", t, score=5.0 - r, doc_id=f"g{i}") for r, t in enumerate(texts)]
        answer = f"Net sales were ${1000 + i}.5 million."
        items.append(EvalItem(id=f"q{i}", question=q, split="dev", gold_doc_ids=(f"g{i}",), answer=answer))
    search = Pipeline(config=PipelineConfig(retrievers=(BM25Config(),)), retrievers=[FixedRetriever(runs)])
    oracle = FakeScorer(lambda q, p: 1.0 if p.startswith("|Net sales|") else 0.0)
    by_ndcg = check_on_dev(items, search, oracle, RerankerTrainConfig())
    assert by_ndcg is not None and by_ndcg.best is None and by_ndcg.without == pytest.approx(1.0)
    by_figures = check_on_dev(items, search, oracle, RerankerTrainConfig(dev_evidence_k=1))
    assert by_figures is not None and by_figures.without == pytest.approx(0.0)
    assert by_figures.best is not None and by_figures.with_best == pytest.approx(1.0)
