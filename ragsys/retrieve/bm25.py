"""Sparse BM25 retrieval: `BM25Config` (the scoring parameters), `BM25Scorer`, `BM25Retriever`.

The index holds only corpus statistics (`bm25_index.BM25Index`: vocabulary, term-major term
frequencies, document lengths), so one stored index serves every variant, k1 and b;
`BM25Scorer` turns it into precomputed weights once and searches them (`bm25_search` holds the
weights, the top-k selection and the numba kernel); the variants' idf and tf terms are in
`bm25_variants`.

Example:
    >>> retriever = BM25Config(variant="lucene").build(index)  # doctest: +SKIP
    >>> retriever.retrieve("does aspirin prevent stroke?", k=5)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ragsys.retrieve.bm25_index import BM25Index, IntArray
from ragsys.retrieve.bm25_search import Backend, SearchKernel, load_kernel, top_k_rows, weight_matrix
from ragsys.retrieve.bm25_variants import FloatArray, Variant
from ragsys.retrieve.tokenize import Tokenizer, TokenizerConfig
from ragsys.types import Chunk, Frozen, Hit


class BM25Source(Protocol):
    """What a BM25 retriever reads from an opened index (`ragsys.index.reader.Index` is one)."""

    def bm25(self, tokenizer: TokenizerConfig) -> BM25Index: ...

    def chunks(self, rows: Sequence[int]) -> list[Chunk]: ...


class BM25Config(Frozen):
    """Scoring parameters; the index itself does not depend on them.

    Defaults are the best nDCG@10 on SciFact *train* queries over 7 tokenizers x 3 variants
    x 5 k1 x 4 b (`eval/bench/bm25_scifact_quality.py`): bm25+, k1 1.2, b 0.75 with stopwords,
    stemming and tokens of 2+ characters (train 0.699; the best settings differ by < 0.002).
    `epsilon` is used only by "okapi" and `delta` only by "bm25+".
    """

    kind: Literal["bm25"] = "bm25"
    variant: Variant = "bm25+"
    k1: float = Field(default=1.2, ge=0)
    b: float = Field(default=0.75, ge=0, le=1)
    delta: float = Field(default=0.5, ge=0)
    epsilon: float = Field(default=0.25, ge=0)
    tokenizer: TokenizerConfig = TokenizerConfig()

    def build_scorer(self, index: BM25Index, backend: Backend = "auto") -> BM25Scorer:
        return BM25Scorer(index, self, backend)

    def build(self, source: BM25Source) -> BM25Retriever:
        """The retriever over the index's BM25 structure for this tokenizer (read from disk)."""
        return BM25Retriever(self, self.build_scorer(source.bm25(self.tokenizer)), Tokenizer(self.tokenizer),
                             source.chunks)  # fmt: skip


class BM25Retriever:
    """Tokenizes the query, scores it, and looks up the chunks of the top rows.

    `chunks` maps index rows to chunks, so the store that owns chunk text stays elsewhere.

    >>> texts = ["Cells divide.", "Stars shine."]
    >>> tokenizer = Tokenizer(TokenizerConfig())
    >>> config = BM25Config()
    >>> scorer = config.build_scorer(BM25Index.build(tokenizer.tokenize_many(texts)))
    >>> fake = [Chunk(id=str(i), doc_id=str(i), source="x", text=t, page_start=1, page_end=1,
    ...               start=0, end=len(t), hash="") for i, t in enumerate(texts)]
    >>> retriever = BM25Retriever(config, scorer, tokenizer, lambda rows: [fake[r] for r in rows])
    >>> [h.chunk.text for h in retriever.retrieve("dividing cells", k=3)]
    ['Cells divide.']
    """

    def __init__(
        self,
        config: BM25Config,
        scorer: BM25Scorer,
        tokenizer: Tokenizer,
        chunks: Callable[[Sequence[int]], list[Chunk]],
    ) -> None:
        if scorer.config != config or tokenizer.config != config.tokenizer:
            raise ValueError(
                "scorer and tokenizer must be built from this BM25Config "
                "(use config.build_scorer(index) and Tokenizer(config.tokenizer))"
            )
        self.config = config
        self._scorer, self._tokenizer, self._chunks = scorer, tokenizer, chunks

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self._hits(*self._scorer.search(self._tokenizer.tokenize(query), k))

    def retrieve_many(
        self, queries: Sequence[str], k: int = 10, rows: IntArray | None = None
    ) -> list[list[Hit]]:
        """`rows`, when given, are the only index rows that may be returned (a metadata filter):
        the others are dropped before top-k, so k hits come back when k matching rows exist."""
        results = self._scorer.search_many(self._tokenizer.tokenize_many(queries), k, rows)
        return [self._hits(scores, found) for scores, found in results]

    def _hits(self, scores: FloatArray, rows: IntArray) -> list[Hit]:
        chunks = self._chunks(rows.tolist())
        return [Hit(chunk=c, score=float(s), source="bm25") for c, s in zip(chunks, scores, strict=True)]


KERNEL_MIN_QUERIES = 32  # "auto" runs numba from this many queries per call (see BM25Scorer)
_BLOCK_SCORES = 1 << 18  # scores per query block: 2 MB of float64 stays in cache (fastest on SciFact)


class BM25Scorer:
    """Scores token lists against every document of one index under one `BM25Config`.

    A duplicated query token counts as often as it occurs (as in rank_bm25); unknown tokens
    are ignored. `search` returns only documents with a positive match score, best first,
    ties broken by ascending row; for bm25+ the `idf * delta` that every document gets
    is added to those scores but does not make a non-matching document a hit. Okapi's idf is 0
    for a term in exactly half the documents, so such a match alone is not a hit (rank_bm25
    scores it 0 too).

    `backend` picks how `search` runs: "numba" runs `bm25_numba.search_block`, which touches
    only each query's postings; "numpy" scores queries in blocks (one `np.bincount` fills a
    (queries, docs) block, `top_k_rows` selects from all its rows), so numpy's per-call cost is
    paid per block; "auto" is numba for calls of `KERNEL_MIN_QUERIES` queries or more (when
    numba imports) and numpy for fewer. Both give bit-identical results (tested); loading even
    the cached numba kernel costs about 0.5 s per process, more than numpy spends on a few
    dozen queries, so `ragsys search` and `ask` never pay it. `get_scores` is numpy either way:
    it returns every document's score, so there is nothing to skip.

    >>> scorer = BM25Config().build_scorer(BM25Index.build([["a", "b"], ["b"]]))
    >>> scorer.search(["a"], k=5)[1].tolist()
    [0]
    """

    def __init__(self, index: BM25Index, config: BM25Config, backend: Backend = "auto") -> None:
        self.index, self.config, self._backend = index, config, backend
        self._kernel: SearchKernel | None = None
        self._loaded = False
        if backend == "numba":
            self._load()  # fail here, not on the first search, when numba is missing
        matrix, self._absent = weight_matrix(
            index, config.variant, config.k1, config.b, config.delta, config.epsilon
        )
        self._indptr: IntArray = matrix.indptr.astype(np.int64)
        self._starts: list[int] = matrix.indptr.tolist()  # Python ints slice numpy fastest
        self._docs: npt.NDArray[np.int32] = matrix.indices
        self._weights: npt.NDArray[np.float32] = matrix.data
        self._absent_list: list[float] = self._absent.tolist()
        self._has_absent = bool(np.any(self._absent))

    @property
    def backend(self) -> Literal["numba", "numpy"]:
        """What large searches run on ("auto": numba when it imports)."""
        return "numpy" if self._backend == "numpy" or self._load() is None else "numba"

    def _load(self) -> SearchKernel | None:
        if not self._loaded:  # a race only loads the same cached kernel twice
            self._kernel, self._loaded = load_kernel(self._backend), True
        return self._kernel

    def get_scores(self, query_tokens: Sequence[str]) -> FloatArray:
        """Every document's score, float64, shape (num_docs,)."""
        terms = self._term_ids([query_tokens])
        scores: FloatArray = self._accumulate(terms)[0] + self._absent_scores(terms)[0]
        return scores

    def search(self, query_tokens: Sequence[str], k: int) -> tuple[FloatArray, IntArray]:
        """(scores, rows) of the best k matching documents: score desc, then row asc."""
        return self.search_many([query_tokens], k)[0]

    def search_many(
        self, queries: Sequence[Sequence[str]], k: int, rows: IntArray | None = None
    ) -> list[tuple[FloatArray, IntArray]]:
        """Per query, (scores, rows) of the best k matching documents; with `rows`, only those
        documents may match (scored on numpy: the kernel has no mask)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if rows is not None:
            return self._search_masked(queries, k, rows)
        batch = self._backend == "numba" or (self._backend == "auto" and len(queries) >= KERNEL_MIN_QUERIES)
        kernel = self._load() if batch else None
        if kernel is not None:
            return self._search_kernel(kernel, queries, min(k, self.index.num_docs))
        per_block = max(1, _BLOCK_SCORES // max(1, self.index.num_docs))
        results: list[tuple[FloatArray, IntArray]] = []
        for start in range(0, len(queries), per_block):
            terms = self._term_ids(queries[start : start + per_block])
            offsets = self._absent_scores(terms) if self._has_absent else None
            results.extend(top_k_rows(self._accumulate(terms), k, offsets))
        return results

    def _search_masked(
        self, queries: Sequence[Sequence[str]], k: int, rows: IntArray
    ) -> list[tuple[FloatArray, IntArray]]:
        outside = np.ones(self.index.num_docs, dtype=bool)
        outside[rows] = False
        results: list[tuple[FloatArray, IntArray]] = []
        for tokens in queries:
            terms = self._term_ids([tokens])
            scores = self._accumulate(terms)
            scores[0, outside] = 0.0  # only positive scores are hits: these rows cannot be
            offsets = self._absent_scores(terms) if self._has_absent else None
            results.extend(top_k_rows(scores, k, offsets))
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
