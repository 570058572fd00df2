"""Scoring queries against a `BM25Index`: a term-major matrix of precomputed weights.

`BM25Scorer` turns the index into per-(term, doc) weights once; a query then sums a few rows
of it. Search runs a numba kernel (`bm25_numba.py`) when numba imports, else numpy
(`np.bincount` over blocks of queries, then `top_k_rows`); both give identical results, and
the kernel is what beats bm25s (`eval/bench/bm25.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ragsys.retrieve.bm25_index import BM25Index, IntArray
from ragsys.retrieve.bm25_variants import IDF, TF, FloatArray, Variant, length_norm


class BM25Params(Protocol):
    """The scoring parameters a scorer reads (`ragsys.retrieve.bm25.BM25Config` has them)."""

    @property
    def variant(self) -> Variant: ...
    @property
    def k1(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def delta(self) -> float: ...
    @property
    def epsilon(self) -> float: ...


Backend = Literal["auto", "numba", "numpy"]


_BLOCK_SCORES = 1 << 18  # scores per query block: 2 MB of float64 stays in cache (fastest on SciFact)


_TINY = float(np.nextafter(0.0, 1.0))  # `score >= _TINY` is `score > 0`


def weight_matrix(index: BM25Index, config: BM25Params) -> tuple[sp.csr_array, FloatArray]:
    """Per-(term, doc) BM25 weights, term-major float32, plus each term's weight in a doc
    that lacks it (nonzero only for bm25+: idf * delta), kept apart to keep the matrix sparse.
    """
    tf_fn = TF[config.variant]
    df = np.diff(index.tf.indptr).astype(np.float64)
    idf = IDF[config.variant](df, index.num_docs, config.epsilon)
    avgdl = float(index.doc_lengths.mean()) if index.num_docs else 0.0
    norm = length_norm(index.doc_lengths.astype(np.float64), avgdl or 1.0, config.b)
    absent = float(tf_fn(np.zeros(1), np.ones(1), config.k1, config.delta)[0])
    entry_term = np.repeat(np.arange(df.shape[0]), np.diff(index.tf.indptr))
    tf = index.tf.data.astype(np.float64)
    weights = idf[entry_term] * (tf_fn(tf, norm[index.tf.indices], config.k1, config.delta) - absent)
    matrix = sp.csr_array(
        (weights.astype(np.float32), index.tf.indices, index.tf.indptr), shape=index.tf.shape
    )
    return matrix, idf * absent


class BM25Scorer:
    """Scores token lists against every document of one index under one `BM25Config`.

    A duplicated query token counts as often as it occurs (as in rank_bm25); unknown tokens
    are ignored. `search` returns only documents with a positive match score, best first,
    ties broken by ascending row; for bm25+ the `idf * delta` that every document gets
    is added to those scores but does not make a non-matching document a hit. Okapi's idf is 0
    for a term in exactly half the documents, so such a match alone is not a hit (rank_bm25
    scores it 0 too).

    `backend` picks how `search` runs, once, here: "numba" compiles `bm25_numba.search_block`
    on first use and touches only each query's postings; "numpy" scores queries in blocks (one
    `np.bincount` fills a (queries, docs) block, `top_k_rows` selects from all its rows), so
    numpy's per-call cost is paid per block; "auto" is numba when it imports. `get_scores` is
    numpy either way: it returns every document's score, so there is nothing to skip.

    >>> scorer = BM25Config().build_scorer(BM25Index.build([["a", "b"], ["b"]]))
    >>> scorer.search(["a"], k=5)[1].tolist()
    [0]
    """

    def __init__(self, index: BM25Index, config: BM25Params, backend: Backend = "auto") -> None:
        self.index, self.config = index, config
        self._kernel = load_kernel(backend)
        self.backend: Literal["numba", "numpy"] = "numpy" if self._kernel is None else "numba"
        matrix, self._absent = weight_matrix(index, config)
        self._indptr: IntArray = matrix.indptr.astype(np.int64)
        self._starts: list[int] = matrix.indptr.tolist()  # Python ints slice numpy fastest
        self._docs: npt.NDArray[np.int32] = matrix.indices
        self._weights: npt.NDArray[np.float32] = matrix.data
        self._absent_list: list[float] = self._absent.tolist()
        self._has_absent = bool(np.any(self._absent))

    def get_scores(self, query_tokens: Sequence[str]) -> FloatArray:
        """Every document's score, float64, shape (num_docs,)."""
        terms = self._term_ids([query_tokens])
        scores: FloatArray = self._accumulate(terms)[0] + self._absent_scores(terms)[0]
        return scores

    def search(self, query_tokens: Sequence[str], k: int) -> tuple[FloatArray, IntArray]:
        """(scores, rows) of the best k matching documents: score desc, then row asc."""
        return self.search_many([query_tokens], k)[0]

    def search_many(self, queries: Sequence[Sequence[str]], k: int) -> list[tuple[FloatArray, IntArray]]:
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if self._kernel is not None:
            return self._search_kernel(self._kernel, queries, min(k, self.index.num_docs))
        per_block = max(1, _BLOCK_SCORES // max(1, self.index.num_docs))
        results: list[tuple[FloatArray, IntArray]] = []
        for start in range(0, len(queries), per_block):
            terms = self._term_ids(queries[start : start + per_block])
            offsets = self._absent_scores(terms) if self._has_absent else None
            results.extend(top_k_rows(self._accumulate(terms), k, offsets))
        return results

    def _search_kernel(
        self, kernel: SearchKernel, queries: Sequence[Sequence[str]], k: int
    ) -> list[tuple[FloatArray, IntArray]]:
        """All queries in one kernel call: term ids go in flat (-1 for unknown tokens), with
        per-query offsets."""
        if k == 0:
            return [(np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in queries]
        get = self.index.vocab.get
        query_starts = np.zeros(len(queries) + 1, dtype=np.int64)
        np.cumsum([len(tokens) for tokens in queries], out=query_starts[1:])
        flat = np.array([get(t, -1) for tokens in queries for t in tokens], dtype=np.int64)
        zeros = np.zeros(self.index.num_docs)  # per call, not per scorer: threads may share one
        args = (self._indptr, self._docs, self._weights, self._absent, zeros, query_starts, flat, k)
        scores, rows, counts = kernel(*args)
        return [(scores[q, :n], rows[q, :n]) for q, n in enumerate(counts.tolist())]

    def _term_ids(self, queries: Sequence[Sequence[str]]) -> list[list[int]]:
        vocab = self.index.vocab
        return [[vocab[t] for t in tokens if t in vocab] for tokens in queries]

    def _absent_scores(self, terms: list[list[int]]) -> FloatArray:
        """Per query, the bm25+ floor every document gets (zeros for the other variants)."""
        absent = self._absent_list
        return np.array([sum([absent[t] for t in ids]) for ids in terms], dtype=np.float64)

    def _accumulate(self, terms: list[list[int]]) -> FloatArray:
        """Match scores, shape (queries, docs). Postings are concatenated slices of the
        term-major matrix (faster than a vectorized gather for SciFact-sized queries), shifted
        by query * num_docs so that a single bincount fills the whole block."""
        n_docs, starts, size = self.index.num_docs, self._starts, len(terms) * self.index.num_docs
        bounds = [[(starts[t], starts[t + 1]) for t in ids] for ids in terms]
        docs = [self._docs[a:b] for query in bounds for a, b in query]
        if not docs:
            return np.zeros((len(terms), n_docs))
        weights = [self._weights[a:b] for query in bounds for a, b in query]
        shift = np.repeat(np.arange(0, size, n_docs), [sum(b - a for a, b in query) for query in bounds])
        summed = np.bincount(np.concatenate(docs) + shift, weights=np.concatenate(weights), minlength=size)
        return summed.astype(np.float64, copy=False).reshape(len(terms), n_docs)


class SearchKernel(Protocol):
    """`bm25_numba.search_block`: (scores, rows, counts) of each query's top k."""

    def __call__(
        self,
        starts: IntArray,
        docs: npt.NDArray[np.int32],
        weights: npt.NDArray[np.float32],
        absent: FloatArray,
        scores: FloatArray,
        query_starts: IntArray,
        query_terms: IntArray,
        k: int,
    ) -> tuple[FloatArray, IntArray, IntArray]: ...


def load_kernel(backend: Backend) -> SearchKernel | None:
    """The numba search kernel, or None for numpy. Imported here, not at module import, so
    `import ragsys` does not pay numba's ~0.3 s unless a scorer is built."""
    if backend == "numpy":
        return None
    try:
        from ragsys.retrieve.bm25_numba import search_block
    except ImportError as error:
        if backend == "numba":
            raise ImportError(f"backend='numba' needs numba ({error}): pip install numba") from error
        return None
    kernel: SearchKernel = search_block
    return kernel


def top_k_rows(
    scores: FloatArray, k: int, offsets: FloatArray | None = None
) -> list[tuple[FloatArray, IntArray]]:
    """Per row of `scores` (queries, docs): the k highest positive scores and their columns,
    by score desc then column asc. `offsets[row]`, if given, is added to that row's returned
    scores after selection (bm25+'s floor: it moves every doc alike, so it cannot reorder).

    Avoids partitioning whole rows: cut each row into about sqrt(docs) blocks; the k-th largest
    block maximum is a lower bound on the row's k-th largest score (k block maxima are k
    distinct scores at least that high), so only blocks whose maximum reaches it are read again.
    """
    n_rows, n_cols = scores.shape
    if k == 0 or n_cols == 0:
        return [(np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in range(n_rows)]
    width = max(1, min(math.isqrt(n_cols), n_cols // (2 * k)))
    if -(-n_cols // width) > k:
        flat = _candidates(scores, k, width)
    else:  # k is close to the number of docs: sort every positive score
        flat = np.flatnonzero(scores > 0)
    rows, cols = np.divmod(flat, n_cols)
    values = scores.ravel().take(flat)  # flat positions: 1-D take is far faster than [rows, cols]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    per_row = np.bincount(rows, minlength=n_rows)
    rank = np.arange(rows.shape[0]) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    keep = rank < k
    values, rows = values[keep], rows[keep]
    if offsets is not None:
        values = values + offsets[rows]
    cuts = np.cumsum(np.minimum(per_row, k))[:-1]
    return list(zip(np.split(values, cuts), np.split(cols[keep].astype(np.int64), cuts), strict=True))


def _candidates(scores: FloatArray, k: int, width: int) -> IntArray:
    """Flat positions of every positive score that may be in its row's top k."""
    n_cols = scores.shape[1]
    block_starts = np.arange(0, n_cols, width)
    maxima = np.maximum.reduceat(scores, block_starts, axis=1)
    kth = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]
    threshold = np.maximum(kth, _TINY)
    block_rows, blocks = np.nonzero(maxima >= threshold[:, None])
    lo = block_starts[blocks]
    lengths = np.minimum(lo + width, n_cols) - lo
    first = block_rows * n_cols + lo - (np.cumsum(lengths) - lengths)
    flat = np.repeat(first, lengths) + np.arange(int(lengths.sum()))
    hit = scores.ravel().take(flat) >= np.repeat(threshold[block_rows], lengths)
    return flat[hit]
