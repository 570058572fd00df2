"""Frozen data that flows between components.

Scores live on `Hit`, never on `Chunk`: a chunk is what the index holds, a hit is
what one retriever said about it for one query.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base for every data and config model: immutable, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


BlockKind = Literal["heading", "paragraph", "table"]


class Block(Frozen):
    """A structural unit of a page: `Page.text[start:end] == text`.

    The chunker splits only at block boundaries (and inside paragraphs at sentence
    boundaries), never inside a table row, so blocks carry the structure it needs.
    """

    kind: BlockKind
    text: str
    start: int
    end: int
    level: int = 0  # heading level: 1 is the largest font; 0 for non-headings


class Page(Frozen):
    """One page in reading order. `number` is 1-based, as printed in citations."""

    number: int
    text: str
    blocks: tuple[Block, ...] = ()
    has_text_layer: bool = True
    ocr: bool = False


class Document(Frozen):
    """An extracted file (or one row of a BEIR corpus).

    `id` is what eval sets refer to as a gold document: the file's path as indexed,
    or the `_id` of a corpus row. `source` is always the file it came from.
    """

    id: str
    source: str
    title: str = ""
    author: str = ""
    page_count: int
    pages: tuple[Page, ...]
    content_hash: str
    extractor: str
    warnings: tuple[str, ...] = ()


class Chunk(Frozen):
    """A retrievable span of a document.

    `start` is a character offset into page `page_start`'s text and `end` one into
    page `page_end`'s text (exclusive), so a citation can point at the exact place.
    `hash` is the sha256 of `text`: the embedding cache's key.
    """

    id: str
    doc_id: str
    source: str
    text: str
    page_start: int
    page_end: int
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    hash: str
    title: str = ""


class Hit(Frozen):
    """A chunk as scored by one retriever, fusion or reranker (`source` says which)."""

    chunk: Chunk
    score: float
    source: str


class Citation(Frozen):
    """An `[n]` in an answer, resolved to the passage it names."""

    n: int
    chunk_id: str
    doc: str
    page_start: int
    page_end: int
    text: str


class Answer(Frozen):
    """A generated answer with the passages it was given and the ones it cited."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    contexts: tuple[Hit, ...] = ()
    dropped_citations: int = 0
    timings: dict[str, float] = {}
    backend: str | None = None  # which inference backend wrote it: "transformers", "llama-cpp", "openai"
    cited_after: bool = False  # its citations were added after generation (generate/attribution.py)
