"""The numba search kernel against the numpy path: the same rows, the same sums."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.bm25_index import BM25Index
from tests.fixtures.bm25 import VARIANTS, synthetic_corpus


def tie_heavy_corpus(n_words: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Docs of 1-3 tokens: most scores tie, and a query's terms reach the same rows in
    different orders, which is what the kernel's heap must still rank by row. 6 words make
    each query's postings cover most docs (the kernel scans all rows), 300 words few (it
    revisits only the postings)."""
    rng = np.random.default_rng(seed)
    words = [f"v{i}" for i in range(n_words)]
    docs = [[words[i] for i in rng.integers(0, n_words, rng.integers(1, 4))] for _ in range(300)]
    queries = [[words[i] for i in rng.integers(0, n_words, rng.integers(1, 5))] for _ in range(40)]
    return docs, queries + [["v1", "unknown", "v1"]]


def covered(docs: list[list[str]], queries: list[list[str]]) -> list[float]:
    """Per query, its postings (with repeats) over the number of docs."""
    index = BM25Index.build(docs)
    df = np.diff(index.tf.indptr)
    return [sum(int(df[index.vocab[t]]) for t in q if t in index.vocab) / len(docs) for q in queries]


CORPORA: dict[str, Callable[[], tuple[list[list[str]], list[list[str]]]]] = {
    "zipf": synthetic_corpus,
    "dense": lambda: tie_heavy_corpus(6),
    "sparse": lambda: tie_heavy_corpus(300),
}


def test_kernel_corpora_cover_both_selection_paths() -> None:
    """Guards the test below: the kernel scans every row when a query's postings exceed half
    the docs, and revisits only the postings otherwise; both paths must be compared."""
    fractions = [f for make in CORPORA.values() for f in covered(*make())]
    assert any(f > 0.5 for f in fractions) and any(0 < f <= 0.5 for f in fractions)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("corpus_name", CORPORA)
def test_numba_and_numpy_backends_agree_exactly(variant: str, corpus_name: str) -> None:
    pytest.importorskip("numba", reason="numba is not installed: nothing to compare")
    docs, queries = CORPORA[corpus_name]()
    index = BM25Index.build(docs)
    config = BM25Config.model_validate({"variant": variant})
    jit, ref = config.build_scorer(index, "numba"), config.build_scorer(index, "numpy")
    assert (jit.backend, ref.backend) == ("numba", "numpy")
    for k in (1, 3, 10, 100, len(docs) + 1):
        for got, want in zip(jit.search_many(queries, k), ref.search_many(queries, k), strict=True):
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])  # same sums in the same order


def test_numba_backend_matches_numpy_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    pytest.importorskip("numba", reason="numba is not installed: nothing to compare")
    docs, queries = scifact
    index = BM25Index.build(docs)
    for variant in VARIANTS:
        config = BM25Config.model_validate({"variant": variant})
        jit, ref = config.build_scorer(index, "numba"), config.build_scorer(index, "numpy")
        for got, want in zip(jit.search_many(queries, 10), ref.search_many(queries, 10), strict=True):
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
