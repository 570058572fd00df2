"""Numba kernels behind `BM25Scorer`'s "numba" backend.

Importing this module imports numba (~0.3 s), so `ragsys.retrieve.bm25` imports it only when a
scorer is built; the kernels compile on their first call. They compute exactly what the numpy
path does: a query's terms are summed in query order, postings in row order, in float64 (as
`np.bincount` sums float32 weights), so scores match bit for bit and so do tie orders.

Unlike the numpy path (and bm25s), a query never scans all documents: it touches only the
rows in its postings, and selects its top k among those with a size-k heap.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=False)  # type: ignore[misc]
def _worse(score_a: float, row_a: int, score_b: float, row_b: int) -> bool:
    """Ranking order: higher score first, then lower row; `a` ranks after `b`."""
    return score_a < score_b or (score_a == score_b and row_a > row_b)


@njit(nogil=True, cache=False)  # type: ignore[misc]
def _sift_down(heap_s: np.ndarray, heap_r: np.ndarray, size: int, i: int) -> None:
    """Restore the heap below `i`; the root (index 0) is the worst kept hit."""
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        right = child + 1
        if right < size and _worse(heap_s[right], heap_r[right], heap_s[child], heap_r[child]):
            child = right
        if not _worse(heap_s[child], heap_r[child], heap_s[i], heap_r[i]):
            return
        heap_s[i], heap_s[child] = heap_s[child], heap_s[i]
        heap_r[i], heap_r[child] = heap_r[child], heap_r[i]
        i = child


@njit(nogil=True, cache=False)  # type: ignore[misc]
def _push(heap_s: np.ndarray, heap_r: np.ndarray, size: int, score: float, row: int) -> None:
    """Append to a heap of `size` entries and sift the new one up."""
    i = size
    heap_s[i], heap_r[i] = score, row
    while i > 0:
        parent = (i - 1) // 2
        if not _worse(heap_s[i], heap_r[i], heap_s[parent], heap_r[parent]):
            return
        heap_s[i], heap_s[parent] = heap_s[parent], heap_s[i]
        heap_r[i], heap_r[parent] = heap_r[parent], heap_r[i]
        i = parent


@njit(nogil=True, cache=False)  # type: ignore[misc]
def _drain(
    scores: np.ndarray,
    docs: np.ndarray,
    lo: int,
    hi: int,
    heap_s: np.ndarray,
    heap_r: np.ndarray,
    size: int,
) -> int:
    """Offer the rows of postings [lo, hi) to the heap and zero their scores, so that the
    buffer is clean for the next query and a row met again offers 0 (never a hit)."""
    k = heap_s.shape[0]
    for p in range(lo, hi):
        row = docs[p]
        score = scores[row]
        scores[row] = 0.0
        if score > 0.0 and (size < k or _worse(heap_s[0], heap_r[0], score, row)):
            if size < k:
                _push(heap_s, heap_r, size, score, row)
                size += 1
            else:
                heap_s[0], heap_r[0] = score, row
                _sift_down(heap_s, heap_r, size, 0)
    return size


@njit(nogil=True, cache=False)  # type: ignore[misc]
def _heapsort(heap_s: np.ndarray, heap_r: np.ndarray, size: int) -> None:
    """Sort the heap in place, best first: the worst goes last."""
    for end in range(size - 1, 0, -1):
        heap_s[0], heap_s[end] = heap_s[end], heap_s[0]
        heap_r[0], heap_r[end] = heap_r[end], heap_r[0]
        _sift_down(heap_s, heap_r, end, 0)


@njit(nogil=True, cache=False)  # type: ignore[misc]
def search_block(
    starts: np.ndarray,  # (terms + 1,) int64: term t's postings are [starts[t], starts[t + 1])
    docs: np.ndarray,  # (postings,) int32 rows
    weights: np.ndarray,  # (postings,) float32
    n_docs: int,
    query_starts: np.ndarray,  # (queries + 1,) int64 into query_terms
    query_terms: np.ndarray,  # (total query terms,) int64, duplicates kept
    k: int,  # 1 <= k <= n_docs
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k (scores (queries, k) float64, rows (queries, k) int64, counts (queries,)) of
    positive match scores. Two passes over the query's postings: one sums, one selects and
    re-zeroes; neither branches on whether a row was seen before, which a CPU mispredicts."""
    n_queries = query_starts.shape[0] - 1
    out_s = np.zeros((n_queries, k), np.float64)
    out_r = np.zeros((n_queries, k), np.int64)
    counts = np.zeros(n_queries, np.int64)
    scores = np.zeros(n_docs, np.float64)
    for q in range(n_queries):
        for j in range(query_starts[q], query_starts[q + 1]):
            term = query_terms[j]
            for p in range(starts[term], starts[term + 1]):
                scores[docs[p]] += np.float64(weights[p])
        size = 0
        for j in range(query_starts[q], query_starts[q + 1]):
            term = query_terms[j]
            size = _drain(scores, docs, starts[term], starts[term + 1], out_s[q], out_r[q], size)
        _heapsort(out_s[q], out_r[q], size)
        counts[q] = size
    return out_s, out_r, counts
