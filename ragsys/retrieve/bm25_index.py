"""`BM25Index`: the corpus statistics BM25 needs, stored without any scoring parameter.

Vocabulary, term-major term frequencies and document lengths only, so one stored index
serves every variant, k1 and b (`ragsys.retrieve.bm25_scorer` turns it into weights).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]


_INDEX_ARRAYS = "bm25_index.npz"


_INDEX_VOCAB = "bm25_vocab.json"


_FORMAT = 1


@dataclass(frozen=True, eq=False)
class BM25Index:
    """Corpus statistics: `tf` is a (num_terms, num_docs) CSR matrix of int32 counts, so a
    term's postings are one contiguous slice (row `vocab[term]`).

    >>> index = BM25Index.build([["cell", "divid"], ["cell"]])
    >>> index.num_docs, index.vocab["divid"]
    (2, 1)
    """

    vocab: Mapping[str, int]
    tf: sp.csr_array
    doc_lengths: IntArray

    @property
    def num_docs(self) -> int:
        return int(self.doc_lengths.shape[0])

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]]) -> BM25Index:
        """Row r of the corpus is document r; a list of tokens counts each occurrence."""
        vocab: dict[str, int] = {}
        flat: list[int] = []
        lengths = np.empty(len(token_lists), dtype=np.int64)
        for row, tokens in enumerate(token_lists):
            flat.extend([vocab.setdefault(t, len(vocab)) for t in tokens])
            lengths[row] = len(tokens)
        term_ids = np.asarray(flat, dtype=np.int64)
        doc_ids = np.repeat(np.arange(len(token_lists), dtype=np.int64), lengths)
        ones = np.ones(term_ids.shape[0], dtype=np.int32)
        tf = sp.csr_array((ones, (term_ids, doc_ids)), shape=(len(vocab), len(token_lists)))
        tf.sum_duplicates()  # canonical: one entry per (term, doc), doc rows ascending
        return cls(vocab=vocab, tf=tf, doc_lengths=lengths)

    def save(self, directory: Path) -> None:
        """Arrays as .npz and the vocabulary as JSON: loading never unpickles anything."""
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / _INDEX_ARRAYS,
            indptr=self.tf.indptr,
            indices=self.tf.indices,
            tf=self.tf.data,
            doc_lengths=self.doc_lengths,
        )
        vocab = {"format": _FORMAT, "terms": sorted(self.vocab, key=self.vocab.__getitem__)}
        (directory / _INDEX_VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        vocab = json.loads((directory / _INDEX_VOCAB).read_text(encoding="utf-8"))
        if vocab.get("format") != _FORMAT:
            raise ValueError(
                f"{directory} holds BM25 index format {vocab.get('format')}; "
                f"this version reads {_FORMAT}: rebuild the index"
            )
        terms = tuple(vocab["terms"])
        with np.load(directory / _INDEX_ARRAYS, allow_pickle=False) as arrays:
            doc_lengths = arrays["doc_lengths"].astype(np.int64)
            shape = (len(terms), doc_lengths.shape[0])
            if arrays["indptr"].shape[0] != len(terms) + 1:
                raise ValueError(f"{directory}: vocabulary and arrays disagree; rebuild the index")
            tf = sp.csr_array((arrays["tf"], arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(vocab={t: i for i, t in enumerate(terms)}, tf=tf, doc_lengths=doc_lengths)
