"""Structure-aware chunking: pack a document's blocks into chunks of at most `max_tokens`.

A page's blocks become *pieces* (a heading, a sentence, a table row; a word or a character
segment only when a sentence alone is too long), each counted once, in one batch. Chunks are
then packed greedily over runs of consecutive non-empty pages ("streams"), breaking where
the structure allows, strongest boundary first:

1. a heading starts a new chunk once the current one holds `min_chunk_tokens` of new text,
   and a heading is never a chunk's last piece unless nothing follows it in its stream (or,
   degenerately, headings alone already fill a chunk);
2. a paragraph or table that fits in `max_tokens` is never split (so a chunk may end short
   rather than cut it), except between sentences or rows when its heading would otherwise
   stand alone; when the last fitting boundary leaves a chunk at least half full, the
   strongest boundary wins (block > sentence > word), otherwise the latest one does;
3. an over-long table starts and ends its own chunks and splits only between rows. A single
   row longer than `max_tokens` (real extractions hold some: a tax form's layout table gave
   rows of 15,000 characters) is cut between cells, then words, and logged, because a
   chunk over the bound would be truncated by the embedder and could crowd a generator's
   context; `split_long_rows=False` keeps such a row whole as a chunk of its own instead.

Overlap: a chunk that continues prose (not a heading, not a table) starts up to
`overlap_tokens` earlier, at a sentence start, without reaching back past a heading or a
table or into another stream.

Offsets invariant: `start` indexes page `page_start`'s text and `end` page `page_end`'s text,
and `chunk.text` is `pages[page_start].text[start:]`, then every page in between in full, then
`pages[page_end].text[:end]`, joined by "\\n\\n" (for one page simply `text[start:end]`).
Text between blocks (spacing, unmarked furniture) is kept, so a citation can point at the
exact source. Token counts of pieces are summed as an estimate, and every chunk's own text is
counted once more (in one batch per stream) before it is accepted, so the bound holds for the
real count.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Self

from pydantic import model_validator

from ragsys.chunk.pack import Packer
from ragsys.chunk.pieces import Bounds, Piece, PieceBuilder, streams
from ragsys.chunk.tokens import hf_token_counter
from ragsys.protocols import TokenCounter
from ragsys.types import Chunk, Document, Frozen


class ChunkConfig(Frozen):
    """How to chunk. `tokenizer` names the embedder whose tokenizer counts tokens (`build()`
    loads it), since chunks must fit that model's window; tests pass any `TokenCounter` to
    `StructureChunker` directly."""

    kind: Literal["structure"] = "structure"
    max_tokens: int = 256
    overlap_tokens: int = 32
    # Below this much new text a heading joins the current chunk; None: max_tokens // 8.
    min_chunk_tokens: int | None = None
    # A table row longer than max_tokens is cut between cells (then words) so every chunk fits
    # the embedder and the generator's context; False keeps it whole, over the bound.
    split_long_rows: bool = True
    tokenizer: str = "minilm"

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens={self.max_tokens} is below 16; chunks that small lose context")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(f"overlap_tokens={self.overlap_tokens} must be in [0, max_tokens)")
        if self.min_chunk_tokens is not None and not 0 <= self.min_chunk_tokens < self.max_tokens:
            raise ValueError(f"min_chunk_tokens={self.min_chunk_tokens} must be in [0, max_tokens)")
        return self

    @property
    def heading_min_tokens(self) -> int:
        return self.max_tokens // 8 if self.min_chunk_tokens is None else self.min_chunk_tokens

    def bounds(self) -> Bounds:
        return Bounds(self.max_tokens, self.overlap_tokens, self.heading_min_tokens, self.split_long_rows)

    def build(self) -> StructureChunker:
        """The chunker, counting tokens with `tokenizer`'s tokenizer (loaded here, no weights)."""
        from ragsys.models import load_tokenizer

        return StructureChunker(self, hf_token_counter(load_tokenizer(self.tokenizer)))


class StructureChunker:
    """Splits a `Document` into `Chunk`s along its structure (see the module docstring).

    Example:
        >>> chunker = StructureChunker(ChunkConfig(max_tokens=128), whitespace_token_counter)
        >>> chunks = chunker.split(doc)
    """

    def __init__(self, config: ChunkConfig, count_tokens: TokenCounter) -> None:
        self.config, self._count = config, count_tokens

    def split(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        bounds = self.config.bounds()
        builder = PieceBuilder(doc, self._count, bounds)
        for stream in streams(doc):
            pieces = builder.build(stream)
            packer = Packer(bounds, self._count, doc.pages, pieces)
            for first, end in packer.ranges():
                chunks.append(
                    _chunk(doc, len(chunks), packer.text(first, end), pieces[first], pieces[end - 1])
                )
        return chunks


def chunk_id(doc_id: str, ordinal: int, text: str) -> str:
    """Stable across re-indexing: the same document, position and text give the same id."""
    return hashlib.sha1(f"{doc_id}\x00{ordinal}\x00{text}".encode()).hexdigest()[:16]


def _chunk(doc: Document, ordinal: int, text: str, first: Piece, last: Piece) -> Chunk:
    return Chunk(
        id=chunk_id(doc.id, ordinal, text),
        doc_id=doc.id,
        source=doc.source,
        text=text,
        page_start=doc.pages[first.page].number,
        page_end=doc.pages[last.page].number,
        start=first.start,
        end=last.end,
        heading_path=first.path,
        hash=hashlib.sha256(text.encode()).hexdigest(),
        title=doc.title,
    )
