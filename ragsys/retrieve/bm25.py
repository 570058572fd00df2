"""Sparse BM25 retrieval: `BM25Config` (the scoring parameters) and `BM25Retriever`.

The index holds only corpus statistics (`bm25_index.BM25Index`: vocabulary, term-major term
frequencies, document lengths), so one stored index serves every variant, k1 and b;
`bm25_scorer.BM25Scorer` turns it into precomputed weights and searches them; the variants'
idf and tf terms are in `bm25_variants`.

Example:
    >>> retriever = BM25Config(variant="lucene").build(index)  # doctest: +SKIP
    >>> retriever.retrieve("does aspirin prevent stroke?", k=5)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from pydantic import Field

from ragsys.retrieve.bm25_index import BM25Index, IntArray
from ragsys.retrieve.bm25_scorer import Backend, BM25Scorer
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

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        results = self._scorer.search_many(self._tokenizer.tokenize_many(queries), k)
        return [self._hits(scores, rows) for scores, rows in results]

    def _hits(self, scores: FloatArray, rows: IntArray) -> list[Hit]:
        chunks = self._chunks(rows.tolist())
        return [Hit(chunk=c, score=float(s), source="bm25") for c, s in zip(chunks, scores, strict=True)]
