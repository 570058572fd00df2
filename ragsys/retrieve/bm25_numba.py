"""Numba kernels behind `BM25Scorer`'s "numba" backend.

Importing this module imports numba (~0.3 s), so `ragsys.retrieve.bm25` imports it only when a
scorer is built; the kernels compile on their first call (2-4 s) and numba caches the
machine code (`cache=True`: in `__pycache__` beside this file, or numba's user-wide cache
when that is not writable), so a one-off `ragsys search` pays ~0.3 s, not seconds.
They compute exactly what the numpy path does: a query's terms are summed in query order,
postings in row order, in float64 (as
`np.bincount` sums float32 weights), and bm25+'s floor is summed in query order as Python's
`sum` does, so scores match bit for bit and so do tie orders.

Unlike the numpy path (and bm25s), a query whose postings cover under half the corpus never
reads the other documents: it revisits only its own postings and keeps its top k in a heap.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_TINY = float(np.nextafter(0.0, 1.0))  # `score >= _TINY` is `score > 0`
_jit = njit(nogil=True, cache=True)  # one place to change how every kernel compiles


@_jit
def _worse(score_a: float, row_a: int, score_b: float, row_b: int) -> bool:
    """Ranking order: higher score first, then lower row; `a` ranks after `b`."""
    return score_a < score_b or (score_a == score_b and row_a > row_b)


@_jit
def _sift_down(heap_s: Floats, heap_r: Ints, size: int, i: int) -> None:
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


@_jit
def _push(heap_s: Floats, heap_r: Ints, size: int, score: float, row: int) -> None:
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


@_jit
def _offer(heap_s: Floats, heap_r: Ints, size: int, score: float, row: int) -> int:
    """Keep (score, row) if it is among the best `len(heap_s)` offered; returns the new size."""
    if size < heap_s.shape[0]:
        _push(heap_s, heap_r, size, score, row)
        return size + 1
    if _worse(heap_s[0], heap_r[0], score, row):
        heap_s[0], heap_r[0] = score, row
        _sift_down(heap_s, heap_r, size, 0)
    return size


@_jit
def _bar(heap_s: Floats, size: int) -> float:
    """The lowest score that can still enter: one predictable test rejects most rows."""
    return heap_s[0] if size == heap_s.shape[0] else _TINY


@_jit
def _drain(
    scores: Floats, docs: npt.NDArray[np.int32], lo: int, hi: int, heap_s: Floats, heap_r: Ints, size: int
) -> int:
    """Offer the rows of postings [lo, hi) to the heap and zero their scores, so that the
    buffer is clean for the next query and a row met again offers 0 (never a hit)."""
    bar = _bar(heap_s, size)
    for p in range(lo, hi):
        row = docs[p]
        score = scores[row]
        scores[row] = 0.0
        if score >= bar:
            size = _offer(heap_s, heap_r, size, score, row)
            bar = _bar(heap_s, size)
    return size


@_jit
def _scan(scores: Floats, heap_s: Floats, heap_r: Ints) -> int:
    """Offer every row in order, then zero the buffer: cheaper than `_drain` once a query's
    postings cover much of the corpus, since sequential reads beat revisiting rows at random."""
    size, bar = 0, _TINY
    for row in range(scores.shape[0]):
        if scores[row] >= bar:
            size = _offer(heap_s, heap_r, size, scores[row], row)
            bar = _bar(heap_s, size)
    scores[:] = 0.0
    return size


@_jit
def _heapsort(heap_s: Floats, heap_r: Ints, size: int) -> None:
    """Sort the heap in place, best first: the worst goes last."""
    for end in range(size - 1, 0, -1):
        heap_s[0], heap_s[end] = heap_s[end], heap_s[0]
        heap_r[0], heap_r[end] = heap_r[end], heap_r[0]
        _sift_down(heap_s, heap_r, end, 0)


@_jit
def _search_one(
    starts: Ints,
    docs: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    scores: Floats,
    terms: Ints,
    heap_s: Floats,
    heap_r: Ints,
) -> int:
    """One query's hits into heap_s/heap_r, best first; returns how many. Two passes over its
    postings: one sums, one selects and re-zeroes; neither branches on whether a row was
    seen before, which a CPU would mispredict."""
    postings = 0
    for term in terms:
        if term >= 0:
            for p in range(starts[term], starts[term + 1]):
                scores[docs[p]] += np.float64(weights[p])
            postings += starts[term + 1] - starts[term]
    size = 0
    if 2 * postings > scores.shape[0]:
        size = _scan(scores, heap_s, heap_r)
    else:
        for term in terms:
            if term >= 0:
                size = _drain(scores, docs, starts[term], starts[term + 1], heap_s, heap_r, size)
    _heapsort(heap_s, heap_r, size)
    return size


@_jit
def search_block(
    starts: Ints,  # (terms + 1,) int64: term t's postings are [starts[t], starts[t + 1])
    docs: npt.NDArray[np.int32],  # (postings,) int32 rows
    weights: npt.NDArray[np.float32],  # (postings,) float32
    absent: Floats,  # (terms,) what each term adds to every document (bm25+'s floor)
    scores: Floats,  # (docs,) float64 zeros; left all zero again on return
    query_starts: Ints,  # (queries + 1,) int64 into query_terms
    query_terms: Ints,  # (total query terms,) int64, duplicates kept, -1 for unknown tokens
    k: int,  # 1 <= k <= docs
) -> tuple[Floats, Ints, Ints]:
    """(scores (queries, k) float64, rows (queries, k) int64, counts (queries,)): per query,
    its `counts[q]` best rows with a positive match score; the floor is added after selection,
    as it moves every document alike."""
    n_queries = query_starts.shape[0] - 1
    out_s = np.empty((n_queries, k), np.float64)
    out_r = np.empty((n_queries, k), np.int64)
    counts = np.empty(n_queries, np.int64)
    for q in range(n_queries):
        terms = query_terms[query_starts[q] : query_starts[q + 1]]
        counts[q] = _search_one(starts, docs, weights, scores, terms, out_s[q], out_r[q])
        floor = 0.0
        for term in terms:
            if term >= 0:
                floor += absent[term]
        out_s[q, : counts[q]] += floor
    return out_s, out_r, counts
