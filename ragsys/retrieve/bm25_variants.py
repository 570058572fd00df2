"""BM25 scoring variants: each one an idf(df, n_docs, epsilon) and a tf(tf, length_norm, k1, delta).

Variants follow Kamphuis et al., "Which BM25 Do You Mean? A Large-Scale Reproducibility Study
of Scoring Variants" (ECIR 2020), https://cs.uwaterloo.ca/~jimmylin/publications/Kamphuis_etal_ECIR2020_preprint.pdf
Each term is a tiny pure function with its source, picked by name from `IDF` and `TF`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Variant = Literal["okapi", "lucene", "bm25+"]
IdfFn = Callable[[FloatArray, int, float], FloatArray]
TfFn = Callable[[FloatArray, FloatArray, float, float], FloatArray]


def idf_okapi(df: FloatArray, n_docs: int, epsilon: float) -> FloatArray:
    """Robertson idf with rank_bm25's floor: a term in over half the docs would score negative,
    so it gets `epsilon * mean(idf)` instead. Source: rank_bm25.BM25Okapi._calc_idf."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    floor = epsilon * float(idf.mean()) if idf.size else 0.0
    return np.where(idf < 0, floor, idf)


def idf_lucene(df: FloatArray, n_docs: int, epsilon: float) -> FloatArray:
    """log(1 + (N - df + 0.5) / (df + 0.5)): never negative, so no floor. Source: Lucene's
    BM25Similarity.idf; bm25s.scoring._score_idf_lucene."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def idf_bm25plus(df: FloatArray, n_docs: int, epsilon: float) -> FloatArray:
    """log((N + 1) / df). Source: Lv & Zhai, "Lower-Bounding Term Frequency Normalization"
    (CIKM 2011); rank_bm25.BM25Plus; bm25s.scoring._score_idf_bm25plus."""
    return np.log((n_docs + 1) / df)


def tf_okapi(tf: FloatArray, norm: FloatArray, k1: float, delta: float) -> FloatArray:
    """tf (k1 + 1) / (tf + k1 norm). Source: rank_bm25.BM25Okapi.get_scores (ATIRE tf)."""
    return tf * (k1 + 1) / (tf + k1 * norm)


def tf_lucene(tf: FloatArray, norm: FloatArray, k1: float, delta: float) -> FloatArray:
    """tf / (tf + k1 norm): Lucene >= 8 drops the constant (k1 + 1), which does not change
    rankings. Source: Lucene BM25Similarity; bm25s.scoring._score_tfc_lucene."""
    return tf / (tf + k1 * norm)


def tf_bm25plus(tf: FloatArray, norm: FloatArray, k1: float, delta: float) -> FloatArray:
    """Okapi tf plus delta: containing the term is worth at least idf * delta, however long
    the document, so long documents are not over-penalized. Source: Lv & Zhai 2011;
    rank_bm25.BM25Plus; bm25s.scoring._score_tfc_bm25plus."""
    return tf * (k1 + 1) / (k1 * norm + tf) + delta


IDF: dict[Variant, IdfFn] = {"okapi": idf_okapi, "lucene": idf_lucene, "bm25+": idf_bm25plus}


TF: dict[Variant, TfFn] = {"okapi": tf_okapi, "lucene": tf_lucene, "bm25+": tf_bm25plus}


def length_norm(doc_lengths: FloatArray, avgdl: float, b: float) -> FloatArray:
    """1 - b + b dl / avgdl: b = 0 ignores length, b = 1 normalizes fully."""
    return 1 - b + b * doc_lengths / avgdl
