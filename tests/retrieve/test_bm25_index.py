"""The BM25 term-count index: counts, and the npz + JSON storage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.bm25_index import BM25Index


def test_index_counts_terms_per_doc() -> None:
    index = BM25Index.build([["a", "b", "a"], [], ["b"]])
    assert index.num_docs == 3
    assert index.doc_lengths.tolist() == [3, 0, 1]
    assert index.tf.toarray().tolist() == [[2, 0, 0], [1, 0, 1]]  # rows: a, b


def test_save_load_round_trip(tmp_path: Path, corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    docs, queries = corpus
    index = BM25Index.build(docs)
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert dict(loaded.vocab) == dict(index.vocab)
    np.testing.assert_array_equal(loaded.doc_lengths, index.doc_lengths)
    assert (loaded.tf != index.tf).nnz == 0
    with np.load(tmp_path / "bm25" / "bm25_index.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    before, after = BM25Config().build_scorer(index), BM25Config().build_scorer(loaded)
    for q in queries:
        np.testing.assert_array_equal(before.get_scores(q), after.get_scores(q))


def test_load_rejects_another_format(tmp_path: Path) -> None:
    BM25Index.build([["a"]]).save(tmp_path)
    (tmp_path / "bm25_vocab.json").write_text(json.dumps({"format": 99, "terms": ["a"]}))
    with pytest.raises(ValueError, match="rebuild"):
        BM25Index.load(tmp_path)


def test_load_rejects_mismatched_vocabulary(tmp_path: Path) -> None:
    BM25Index.build([["a", "b"]]).save(tmp_path)
    (tmp_path / "bm25_vocab.json").write_text(json.dumps({"format": 1, "terms": ["a"]}))
    with pytest.raises(ValueError, match="rebuild"):
        BM25Index.load(tmp_path)
