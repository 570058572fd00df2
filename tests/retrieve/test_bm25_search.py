"""The numpy top-k selection, and the backend choice when numba is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.bm25_search import top_k_rows
from tests.fixtures.bm25 import brute_force


def test_auto_falls_back_to_numpy_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ragsys.retrieve.bm25_numba", None)  # its import now fails
    index = BM25Index.build([["a", "b"], ["b"]])
    assert BM25Config().build_scorer(index).backend == "numpy"
    with pytest.raises(ImportError, match="pip install numba"):
        BM25Config().build_scorer(index, "numba")


@pytest.mark.parametrize("seed", range(12))
def test_top_k_rows_matches_brute_force_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 6)), int(rng.integers(1, 3000))
    scores = rng.integers(-1, 6, (n_rows, n_cols)).astype(np.float64)  # ties, zeros, negatives
    for k in (1, 3, 10, 100, n_cols + 1):
        for row, (values, cols) in zip(scores, top_k_rows(scores, k), strict=True):
            assert cols.tolist() == brute_force(row, k)
            np.testing.assert_array_equal(values, row[cols])
