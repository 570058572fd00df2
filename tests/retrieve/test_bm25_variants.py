"""The BM25 variants' idf and tf terms at hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragsys.retrieve.bm25_variants import idf_lucene, idf_okapi, tf_lucene


def test_variant_terms_at_known_values() -> None:
    one = np.array([1.0])
    assert idf_lucene(one, 1, 0.0)[0] == pytest.approx(math.log(1 + 0.5 / 1.5))
    assert tf_lucene(one, one, 1.2, 0.0)[0] == pytest.approx(1 / 2.2)
    # df 3 of 4 docs: raw idf log(1.5/3.5) < 0 is floored to epsilon * mean raw idf
    raw = np.log(np.array([3.5, 1.5]) / np.array([1.5, 3.5]))
    assert idf_okapi(np.array([1.0, 3.0]), 4, 0.5)[1] == pytest.approx(0.5 * raw.mean())
