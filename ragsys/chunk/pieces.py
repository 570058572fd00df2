"""Pieces: the atoms a chunk is packed from, each counted once, in batches.

A page's blocks become pieces: a heading, a sentence, a table row; a word or a character
segment only when a sentence alone is too long. Each piece records the strength of the
boundary before it (`brk`), whether a chunk must end before it (`force`, the edges of an
over-long table) and whether an overlap may begin at it (`lead`, a sentence start in prose).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

from ragsys.chunk.spans import (
    PARAGRAPH,
    Span,
    Splitter,
    cell_spans,
    row_spans,
    sentence_spans,
    trimmed,
    word_spans,
)
from ragsys.chunk.tokens import count_all
from ragsys.protocols import TokenCounter
from ragsys.types import Block, Document, Page

log = logging.getLogger("ragsys.chunk")

# Strength of the boundary before a piece; NO_BREAK marks the inside of a fitting paragraph or table.
NO_BREAK, WORD, SENTENCE, ROW, BLOCK, HEADING = -1, 0, 1, 2, 3, 4


class Bounds(NamedTuple):
    """The limits pieces and packing obey (`ChunkConfig.bounds()`)."""

    max_tokens: int
    overlap_tokens: int
    heading_min_tokens: int
    split_long_rows: bool


_UNKNOWN_HEADING_LEVEL = 6  # level 0 on a heading: nest it (deepest markdown level) rather than reset


PieceKind = Literal["heading", "text", "row"]


@dataclass(frozen=True, slots=True)
class Piece:
    page: int  # index into Document.pages
    start: int
    end: int
    tokens: int
    kind: PieceKind
    brk: int  # strength of the boundary before this piece
    force: bool  # a chunk must end before this piece (the edges of an over-long table)
    lead: bool  # a sentence start in prose: an overlap may begin here
    path: tuple[str, ...]  # headings in force here, this piece included when it is a heading


def page_blocks(page: Page, doc_id: str) -> list[Block]:
    """The page's blocks in order, checked; paragraphs at blank lines when it has none."""
    if not page.blocks:
        return [
            Block(kind="paragraph", text=m.group(), start=m.start(), end=m.end())
            for m in PARAGRAPH.finditer(page.text)
        ]
    blocks = sorted((b for b in page.blocks if b.text.strip()), key=lambda b: b.start)
    for prev, block in zip([None, *blocks], blocks, strict=False):
        if page.text[block.start : block.end] != block.text or (prev is not None and block.start < prev.end):
            raise ValueError(
                f"{doc_id} page {page.number}: block at {block.start}:{block.end} does not match "
                "Page.text or overlaps the previous one; fix the extractor's offsets"
            )
    return blocks


def streams(doc: Document) -> list[list[tuple[int, Block, tuple[str, ...]]]]:
    """Blocks with their heading paths, grouped into runs of consecutive non-empty pages."""
    streams: list[list[tuple[int, Block, tuple[str, ...]]]] = [[]]
    stack: list[tuple[int, str]] = []
    for index, page in enumerate(doc.pages):
        blocks = page_blocks(page, doc.id) if page.text.strip() else []
        if not blocks:
            streams.append([])
            continue
        for block in blocks:
            if block.kind == "heading":
                level = block.level or _UNKNOWN_HEADING_LEVEL
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, " ".join(block.text.lstrip("#").split())))
            streams[-1].append((index, block, tuple(title for _, title in stack)))
    return [s for s in streams if s]


class PieceBuilder:
    """Turns one stream's blocks into pieces, counting every span once and in batches."""

    def __init__(self, doc: Document, count_tokens: TokenCounter, config: Bounds) -> None:
        self._doc, self._pages, self._count, self._cfg = doc, doc.pages, count_tokens, config
        self._cap = config.max_tokens

    def build(self, stream: Sequence[tuple[int, Block, tuple[str, ...]]]) -> list[Piece]:
        units = [self._units(page, block) for page, block, _ in stream]
        counts = iter(count_all(self._count, [self._text(s) for u in units for s in u]))
        pieces: list[Piece] = []
        force_next = False
        for (_, block, path), spans in zip(stream, units, strict=True):
            counted = [(s, next(counts)) for s in spans]
            fits = sum(t for _, t in counted) <= self._cap
            if block.kind == "table":
                pieces += lift_force_to_headings(
                    pieces, self._table(self._rows(counted), fits, path, force_next)
                )
                force_next = not fits
            else:
                pieces += self._prose(block, self._shrink(counted, (word_spans,)), fits, path, force_next)
                force_next = False
        return pieces

    def _text(self, span: Span) -> str:
        return self._pages[span.page].text[span.start : span.end]

    def _units(self, page: int, block: Block) -> list[Span]:
        text = self._pages[page].text
        if block.kind == "table":
            return [Span(page, a, b) for a, b in row_spans(text, block.start, block.end)]
        if block.kind == "heading":
            return [Span(page, *trimmed(text, block.start, block.end))]
        return [Span(page, a, b) for a, b in sentence_spans(text, block.start, block.end)]

    def _rows(self, rows: list[tuple[Span, int]]) -> list[tuple[Span, int]]:
        for row, tokens in rows:
            if tokens > self._cap:
                page = self._pages[row.page].number
                action = "split between cells" if self._cfg.split_long_rows else "kept whole, over the bound"
                log.warning(
                    "%s p.%d: a table row of %d tokens > max_tokens; %s", self._doc.id, page, tokens, action
                )
        return self._shrink(rows, (cell_spans, word_spans)) if self._cfg.split_long_rows else rows

    def _table(
        self, spans: list[tuple[Span, int]], fits: bool, path: tuple[str, ...], force: bool
    ) -> list[Piece]:
        def brk(i: int, s: Span) -> int:
            return BLOCK if i == 0 else NO_BREAK if fits else ROW if s.first else WORD

        return [
            Piece(s.page, s.start, s.end, t, "row", brk(i, s), i == 0 and (force or not fits), False, path)
            for i, (s, t) in enumerate(spans)
        ]

    def _prose(
        self, block: Block, spans: list[tuple[Span, int]], fits: bool, path: tuple[str, ...], force: bool
    ) -> list[Piece]:
        if block.kind == "heading" and len(spans) == 1:
            s, t = spans[0]
            return [Piece(s.page, s.start, s.end, t, "heading", HEADING, force, False, path)]

        def brk(i: int, s: Span) -> int:
            return BLOCK if i == 0 else NO_BREAK if fits else SENTENCE if s.first else WORD

        return [
            Piece(s.page, s.start, s.end, t, "text", brk(i, s), force and i == 0, s.first, path)
            for i, (s, t) in enumerate(spans)
        ]

    def _shrink(
        self, spans: list[tuple[Span, int]], splitters: tuple[Splitter, ...]
    ) -> list[tuple[Span, int]]:
        """Splits each span over the bound with the first splitter, recursing with the rest on
        parts still over it; with no splitter left, cuts by characters."""
        out: list[tuple[Span, int]] = []
        for span, tokens in spans:
            if tokens <= self._cap:
                out.append((span, tokens))
            elif not splitters:
                out += self._segments(span)
            else:
                cuts = splitters[0](self._pages[span.page].text, span.start, span.end)
                parts = [Span(span.page, a, b, span.first and i == 0) for i, (a, b) in enumerate(cuts)]
                counts = count_all(self._count, [self._text(p) for p in parts])
                out += self._shrink(list(zip(parts, counts, strict=True)), splitters[1:])
        return out

    def _segments(self, word: Span) -> list[tuple[Span, int]]:
        """Longest prefixes within the bound, by bisection: only for pathological 'words'."""
        out: list[tuple[Span, int]] = []
        start, text = word.start, self._pages[word.page].text
        while start < word.end:
            lo, hi = start + 1, word.end  # the answer lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if self._count(text[start:mid]) <= self._cap else (lo, mid - 1)
            first = word.first and start == word.start
            out.append((Span(word.page, start, lo, first), self._count(text[start:lo])))
            start = lo
        return out


def lift_force_to_headings(before: list[Piece], table: list[Piece]) -> list[Piece]:
    """Moves a table's forced break before the headings right above it, which introduce it."""
    k = len(before)
    while k > 0 and before[k - 1].kind == "heading":
        k -= 1
    if not table or not table[0].force or k == len(before):
        return table
    before[k] = replace(before[k], force=True)
    return [replace(table[0], force=False), *table[1:]]
