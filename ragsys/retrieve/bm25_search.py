"""The machinery under `BM25Scorer`: precomputed weights, top-k selection, the search kernel.

`weight_matrix` turns a `BM25Index` into per-(term, doc) weights once; a query then sums a few
rows of it. Search runs a numba kernel (`bm25_numba.py`) when numba imports, else numpy
(`np.bincount` over blocks of queries, then `top_k_rows`); both give identical results, and
the kernel is what beats bm25s (`eval/bench/bm25.py`).
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ragsys.retrieve.bm25_index import BM25Index, IntArray
from ragsys.retrieve.bm25_variants import IDF, TF, FloatArray, Variant, length_norm

Backend = Literal["auto", "numba", "numpy"]


_TINY = float(np.nextafter(0.0, 1.0))  # `score >= _TINY` is `score > 0`


def weight_matrix(
    index: BM25Index, variant: Variant, k1: float, b: float, delta: float, epsilon: float
) -> tuple[sp.csr_array, FloatArray]:
    """Per-(term, doc) BM25 weights, term-major float32, plus each term's weight in a doc
    that lacks it (nonzero only for bm25+: idf * delta), kept apart to keep the matrix sparse.
    """
    tf_fn = TF[variant]
    df = np.diff(index.tf.indptr).astype(np.float64)
    idf = IDF[variant](df, index.num_docs, epsilon)
    avgdl = float(index.doc_lengths.mean()) if index.num_docs else 0.0
    norm = length_norm(index.doc_lengths.astype(np.float64), avgdl or 1.0, b)
    absent = float(tf_fn(np.zeros(1), np.ones(1), k1, delta)[0])
    entry_term = np.repeat(np.arange(df.shape[0]), np.diff(index.tf.indptr))
    tf = index.tf.data.astype(np.float64)
    weights = idf[entry_term] * (tf_fn(tf, norm[index.tf.indices], k1, delta) - absent)
    matrix = sp.csr_array(
        (weights.astype(np.float32), index.tf.indices, index.tf.indptr), shape=index.tf.shape
    )
    return matrix, idf * absent


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
