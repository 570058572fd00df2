"""BM25 parity with the reference implementations: okapi and bm25+ with rank_bm25, lucene with bm25s."""

from __future__ import annotations

import numpy as np

from ragsys.retrieve.bm25_index import BM25Index
from tests.fixtures.bm25 import scorer


def assert_okapi_matches_rank_bm25(docs: list[list[str]], queries: list[list[str]]) -> None:
    from rank_bm25 import BM25Okapi

    ours = scorer(docs, variant="okapi", k1=1.5, b=0.75, epsilon=0.25)
    reference = BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0.25)
    for q in queries:
        np.testing.assert_allclose(ours.get_scores(q), reference.get_scores(q), rtol=1e-6, atol=0)


def assert_lucene_matches_bm25s(docs: list[list[str]], queries: list[list[str]]) -> None:
    import bm25s

    ours = scorer(docs, variant="lucene", k1=1.2, b=0.75)
    reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75, dtype="float64")
    reference.index(docs, show_progress=False)
    for q in queries:
        known = [t for t in q if t in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(docs))
        np.testing.assert_allclose(ours.get_scores(q), expected, rtol=1e-6, atol=0)


def test_synthetic_corpus_has_negative_okapi_idfs(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    """Guards the parity test below: it must exercise rank_bm25's epsilon floor."""
    df = np.diff(BM25Index.build(corpus[0]).tf.indptr).astype(np.float64)
    assert (np.log(len(corpus[0]) - df + 0.5) - np.log(df + 0.5) < 0).any()


def test_okapi_matches_rank_bm25_on_synthetic(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_okapi_matches_rank_bm25(*corpus)


def test_okapi_matches_rank_bm25_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_okapi_matches_rank_bm25(*scifact)


def test_bm25plus_matches_rank_bm25(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    from rank_bm25 import BM25Plus

    docs, queries = corpus
    ours = scorer(docs, variant="bm25+", k1=1.3, b=0.6, delta=0.8)
    reference = BM25Plus(docs, k1=1.3, b=0.6, delta=0.8)
    for q in queries:
        np.testing.assert_allclose(ours.get_scores(q), reference.get_scores(q), rtol=1e-6, atol=0)


def test_lucene_matches_bm25s_on_synthetic(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_lucene_matches_bm25s(*corpus)


def test_lucene_matches_bm25s_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_lucene_matches_bm25s(*scifact)
