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
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import model_validator

from ragsys.protocols import TokenCounter
from ragsys.types import Block, Chunk, Document, Frozen, Page

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Strength of the boundary before a piece; NO_BREAK marks the inside of a fitting paragraph or table.
NO_BREAK, WORD, SENTENCE, ROW, BLOCK, HEADING = -1, 0, 1, 2, 3, 4
_UNKNOWN_HEADING_LEVEL = 6  # level 0 on a heading: nest it (deepest markdown level) rather than reset
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "e.g i.e etc al fig figs eq eqs no nos vs dr mr mrs ms prof inc ltd co corp jr sr st approx "
    "ref refs vol pp ca cf u.s u.k jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WORD_SPAN = re.compile(r"\S+")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[ \t]*\n|\s*$)", re.DOTALL)


class ChunkConfig(Frozen):
    """How to chunk. `tokenizer` names the embedder whose tokenizer counts tokens; the caller
    resolves it to a `TokenCounter`, since chunks must fit that model's window."""

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


# --- token counters --------------------------------------------------------------------------


class HFTokenCounter:
    """Counts tokens as a `transformers` tokenizer does, without special tokens.

    `count_many` tokenizes a batch in one call. For a fast tokenizer it calls a private copy
    of the Rust backend with truncation and padding off (a tokenizer.json may switch them on,
    and the `transformers` wrapper resets them per call) through `encode_batch_fast`, which
    skips offsets: about twice the speed of the wrapper, with the same counts.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, batch_size: int = 2048) -> None:
        self._tokenizer, self._batch_size = tokenizer, batch_size
        self._backend = _untruncated_backend(tokenizer)

    def __call__(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        for i in range(0, len(texts), self._batch_size):
            counts.extend(self._count_batch(list(texts[i : i + self._batch_size])))
        return counts

    def _count_batch(self, batch: list[str]) -> list[int]:
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            return [len(e.ids) for e in encode(batch, add_special_tokens=False)]
        encoded = self._tokenizer(
            batch,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # long texts are counted, not fed to a model: no length warning
        )
        return [len(ids) for ids in encoded["input_ids"]]


def _untruncated_backend(tokenizer: PreTrainedTokenizerBase) -> Any:
    """A copy of a fast tokenizer's Rust backend that never truncates or pads; None if slow."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    copy = type(backend).from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def hf_token_counter(tokenizer: PreTrainedTokenizerBase) -> HFTokenCounter:
    """A `TokenCounter` (with `count_many`) over a `transformers` tokenizer."""
    return HFTokenCounter(tokenizer)


def whitespace_token_counter(text: str) -> int:
    """Whitespace-separated words: exact and additive, for tests and tokenizer-free setups."""
    return len(text.split())


def count_all(count_tokens: TokenCounter, texts: Sequence[str]) -> list[int]:
    """Counts in one batch when the counter offers `count_many`, else one call per text."""
    many: Callable[[Sequence[str]], list[int]] | None = getattr(count_tokens, "count_many", None)
    return list(many(texts)) if many is not None else [count_tokens(t) for t in texts]


# --- pieces: the atoms a chunk is packed from -------------------------------------------------

PieceKind = Literal["heading", "text", "row"]


@dataclass(frozen=True, slots=True)
class _Piece:
    page: int  # index into Document.pages
    start: int
    end: int
    tokens: int
    kind: PieceKind
    brk: int  # strength of the boundary before this piece
    force: bool  # a chunk must end before this piece (the edges of an over-long table)
    lead: bool  # a sentence start in prose: an overlap may begin here
    path: tuple[str, ...]  # headings in force here, this piece included when it is a heading


@dataclass(frozen=True, slots=True)
class _Span:
    page: int
    start: int
    end: int
    first: bool = True  # starts its sentence or row (False for later words or cells of one)


Splitter = Callable[[str, int, int], list[tuple[int, int]]]  # (text, start, end) -> spans in text


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of `text[start:end]` as (start, end) offsets into `text`, whitespace trimmed.

    A period after a known abbreviation or a single capital (an initial) does not end one.
    """
    spans, begin = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        word_start = max(text.rfind(" ", begin, m.start()), text.rfind("\n", begin, m.start()), begin - 1)
        word = text[word_start + 1 : m.start()].lower().lstrip("([\"'")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        spans.append(_trimmed(text, begin, m.end()))
        begin = m.end()
    spans.append(_trimmed(text, begin, end))
    return [(a, b) for a, b in spans if b > a]


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD_SPAN.finditer(text, start, end)]


def _cell_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cuts before each inner "|" of a markdown row, so every cell keeps its left bar."""
    cuts = [i for i in range(start + 1, end - 1) if text[i] == "|"]
    return [_trimmed(text, a, b) for a, b in zip([start, *cuts], [*cuts, end], strict=True)]


def _row_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, line_start = [], start
    while line_start < end:
        line_end = text.find("\n", line_start, end)
        line_end = end if line_end < 0 else line_end
        spans.append(_trimmed(text, line_start, line_end))
        line_start = line_end + 1
    return [(a, b) for a, b in spans if b > a]


def _page_blocks(page: Page, doc_id: str) -> list[Block]:
    """The page's blocks in order, checked; paragraphs at blank lines when it has none."""
    if not page.blocks:
        return [
            Block(kind="paragraph", text=m.group(), start=m.start(), end=m.end())
            for m in _PARAGRAPH.finditer(page.text)
        ]
    blocks = sorted((b for b in page.blocks if b.text.strip()), key=lambda b: b.start)
    for prev, block in zip([None, *blocks], blocks, strict=False):
        if page.text[block.start : block.end] != block.text or (prev is not None and block.start < prev.end):
            raise ValueError(
                f"{doc_id} page {page.number}: block at {block.start}:{block.end} does not match "
                "Page.text or overlaps the previous one; fix the extractor's offsets"
            )
    return blocks


def _streams(doc: Document) -> list[list[tuple[int, Block, tuple[str, ...]]]]:
    """Blocks with their heading paths, grouped into runs of consecutive non-empty pages."""
    streams: list[list[tuple[int, Block, tuple[str, ...]]]] = [[]]
    stack: list[tuple[int, str]] = []
    for index, page in enumerate(doc.pages):
        blocks = _page_blocks(page, doc.id) if page.text.strip() else []
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


class _PieceBuilder:
    """Turns one stream's blocks into pieces, counting every span once and in batches."""

    def __init__(self, doc: Document, count_tokens: TokenCounter, config: ChunkConfig) -> None:
        self._doc, self._pages, self._count, self._cfg = doc, doc.pages, count_tokens, config
        self._cap = config.max_tokens

    def build(self, stream: Sequence[tuple[int, Block, tuple[str, ...]]]) -> list[_Piece]:
        units = [self._units(page, block) for page, block, _ in stream]
        counts = iter(count_all(self._count, [self._text(s) for u in units for s in u]))
        pieces: list[_Piece] = []
        force_next = False
        for (_, block, path), spans in zip(stream, units, strict=True):
            counted = [(s, next(counts)) for s in spans]
            fits = sum(t for _, t in counted) <= self._cap
            if block.kind == "table":
                pieces += _lift_force_to_headings(
                    pieces, self._table(self._rows(counted), fits, path, force_next)
                )
                force_next = not fits
            else:
                pieces += self._prose(block, self._shrink(counted, (_word_spans,)), fits, path, force_next)
                force_next = False
        return pieces

    def _text(self, span: _Span) -> str:
        return self._pages[span.page].text[span.start : span.end]

    def _units(self, page: int, block: Block) -> list[_Span]:
        text = self._pages[page].text
        if block.kind == "table":
            return [_Span(page, a, b) for a, b in _row_spans(text, block.start, block.end)]
        if block.kind == "heading":
            return [_Span(page, *_trimmed(text, block.start, block.end))]
        return [_Span(page, a, b) for a, b in sentence_spans(text, block.start, block.end)]

    def _rows(self, rows: list[tuple[_Span, int]]) -> list[tuple[_Span, int]]:
        for row, tokens in rows:
            if tokens > self._cap:
                page = self._pages[row.page].number
                action = "split between cells" if self._cfg.split_long_rows else "kept whole, over the bound"
                log.warning(
                    "%s p.%d: a table row of %d tokens > max_tokens; %s", self._doc.id, page, tokens, action
                )
        return self._shrink(rows, (_cell_spans, _word_spans)) if self._cfg.split_long_rows else rows

    def _table(
        self, spans: list[tuple[_Span, int]], fits: bool, path: tuple[str, ...], force: bool
    ) -> list[_Piece]:
        def brk(i: int, s: _Span) -> int:
            return BLOCK if i == 0 else NO_BREAK if fits else ROW if s.first else WORD

        return [
            _Piece(s.page, s.start, s.end, t, "row", brk(i, s), i == 0 and (force or not fits), False, path)
            for i, (s, t) in enumerate(spans)
        ]

    def _prose(
        self, block: Block, spans: list[tuple[_Span, int]], fits: bool, path: tuple[str, ...], force: bool
    ) -> list[_Piece]:
        if block.kind == "heading" and len(spans) == 1:
            s, t = spans[0]
            return [_Piece(s.page, s.start, s.end, t, "heading", HEADING, force, False, path)]

        def brk(i: int, s: _Span) -> int:
            return BLOCK if i == 0 else NO_BREAK if fits else SENTENCE if s.first else WORD

        return [
            _Piece(s.page, s.start, s.end, t, "text", brk(i, s), force and i == 0, s.first, path)
            for i, (s, t) in enumerate(spans)
        ]

    def _shrink(
        self, spans: list[tuple[_Span, int]], splitters: tuple[Splitter, ...]
    ) -> list[tuple[_Span, int]]:
        """Splits each span over the bound with the first splitter, recursing with the rest on
        parts still over it; with no splitter left, cuts by characters."""
        out: list[tuple[_Span, int]] = []
        for span, tokens in spans:
            if tokens <= self._cap:
                out.append((span, tokens))
            elif not splitters:
                out += self._segments(span)
            else:
                cuts = splitters[0](self._pages[span.page].text, span.start, span.end)
                parts = [_Span(span.page, a, b, span.first and i == 0) for i, (a, b) in enumerate(cuts)]
                counts = count_all(self._count, [self._text(p) for p in parts])
                out += self._shrink(list(zip(parts, counts, strict=True)), splitters[1:])
        return out

    def _segments(self, word: _Span) -> list[tuple[_Span, int]]:
        """Longest prefixes within the bound, by bisection: only for pathological 'words'."""
        out: list[tuple[_Span, int]] = []
        start, text = word.start, self._pages[word.page].text
        while start < word.end:
            lo, hi = start + 1, word.end  # the answer lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if self._count(text[start:mid]) <= self._cap else (lo, mid - 1)
            first = word.first and start == word.start
            out.append((_Span(word.page, start, lo, first), self._count(text[start:lo])))
            start = lo
        return out


def _lift_force_to_headings(before: list[_Piece], table: list[_Piece]) -> list[_Piece]:
    """Moves a table's forced break before the headings right above it, which introduce it."""
    k = len(before)
    while k > 0 and before[k - 1].kind == "heading":
        k -= 1
    if not table or not table[0].force or k == len(before):
        return table
    before[k] = replace(before[k], force=True)
    return [replace(table[0], force=False), *table[1:]]


# --- packing ---------------------------------------------------------------------------------


class _Packer:
    """Greedy packing of one stream's pieces into (first, end) piece ranges."""

    def __init__(
        self, config: ChunkConfig, count_tokens: TokenCounter, pages: Sequence[Page], pieces: Sequence[_Piece]
    ) -> None:
        self._cfg, self._count, self._pages, self._pieces = config, count_tokens, pages, pieces
        self._prefix = [0, *accumulate(p.tokens for p in pieces)]

    def ranges(self) -> list[tuple[int, int]]:
        """Packs on summed piece counts and checks every chunk in one batch; only a stream
        where a real count exceeds the bound (a tokenizer whose counts do not add up) is
        packed again, counting each chunk as it goes."""
        out = self._pack(verify=False)
        multi = [(a, b) for a, b in out if b - a > 1]
        sizes = count_all(self._count, [self.text(a, b) for a, b in multi])
        return out if all(n <= self._cfg.max_tokens for n in sizes) else self._pack(verify=True)

    def _pack(self, verify: bool) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        fresh, n = 0, len(self._pieces)
        while fresh < n:
            start = self._overlap_start(out[-1][0], fresh) if out else fresh
            end = self._fit(start, fresh, verify) if start < fresh else None
            if end is None:
                start, end = fresh, self._fit(fresh, fresh, verify)
            assert end is not None  # without overlap a chunk always fits (see _choose_end)
            out.append((start, end))
            fresh = end
        return out

    def text(self, first: int, end: int) -> str:
        a, b = self._pieces[first], self._pieces[end - 1]
        if a.page == b.page:
            return self._pages[a.page].text[a.start : b.end]
        middle = [self._pages[i].text for i in range(a.page + 1, b.page)]
        return "\n\n".join([self._pages[a.page].text[a.start :], *middle, self._pages[b.page].text[: b.end]])

    def _overlap_start(self, prev_start: int, fresh: int) -> int:
        """Earliest sentence start in the previous chunk's prose tail within `overlap_tokens`."""
        nxt = self._pieces[fresh]
        if nxt.kind != "text" or nxt.force:
            return fresh
        best, i = fresh, fresh - 1
        while (
            i > prev_start
            and self._pieces[i].kind == "text"
            and self._prefix[fresh] - self._prefix[i] <= self._cfg.overlap_tokens
        ):
            best = i if self._pieces[i].lead else best
            i -= 1
        return best

    def _fit(self, start: int, fresh: int, verify: bool) -> int | None:
        """An end past `fresh`; with `verify`, one whose real count fits, shrinking on overflow."""
        stop = len(self._pieces)
        while True:
            end = self._choose_end(start, fresh, stop)
            if end is None or end - start == 1 or not verify:
                return end
            if self._count(self.text(start, end)) <= self._cfg.max_tokens:
                return end
            if end - 1 <= fresh:  # only with overlap: a lone piece is always accepted above
                return None
            stop = end - 1

    def _choose_end(self, start: int, fresh: int, stop: int) -> int | None:
        """Packs from `start` while it fits; then picks an end past `fresh` (new text is a must)."""
        pieces, cap, n = self._pieces, self._cfg.max_tokens, len(self._pieces)
        end, new_text = start, 0
        while end < stop:
            p = pieces[end]
            if end > fresh and (
                p.force or (p.kind == "heading" and new_text >= self._cfg.heading_min_tokens)
            ):
                return self._drop_trailing_headings(start, fresh, end)
            if end > start and self._prefix[end + 1] - self._prefix[start] > cap:
                break
            new_text += p.tokens if end >= fresh and p.kind != "heading" else 0
            end += 1
        if end == n:
            return n
        body = next((i for i in range(start, end) if pieces[i].kind != "heading"), end)
        for pool in self._candidates(fresh, end, body):
            if pool:
                return self._drop_trailing_headings(start, fresh, self._pick(start, pool))
        return None if start < fresh else max(end, fresh + 1)

    def _candidates(self, fresh: int, end: int, body: int) -> tuple[list[int], ...]:
        """Ends to choose from, in order of preference: legal breaks that leave some body text
        in the chunk; then, rather than leave a heading alone, any sentence start or table row
        inside a block that fits on its own; then legal breaks that leave only headings."""
        pieces, span = self._pieces, range(fresh + 1, end + 1)
        legal = [b for b in span if pieces[b].brk > NO_BREAK]
        soft = [
            b
            for b in span
            if b > body and (pieces[b].lead or pieces[b].kind == "row" or pieces[b].brk > NO_BREAK)
        ]
        return [b for b in legal if b > body], soft, legal

    def _pick(self, start: int, pool: list[int]) -> int:
        """The strongest, then latest, boundary that leaves the chunk half full, else the latest."""
        full = [b for b in pool if self._prefix[b] - self._prefix[start] >= self._cfg.max_tokens // 2]
        return max(full, key=lambda b: (self._pieces[b].brk, b)) if full else pool[-1]

    def _drop_trailing_headings(self, start: int, fresh: int, end: int) -> int:
        while end - 1 > max(start, fresh) and self._pieces[end - 1].kind == "heading":
            end -= 1
        return end


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
        builder = _PieceBuilder(doc, self._count, self.config)
        for stream in _streams(doc):
            pieces = builder.build(stream)
            packer = _Packer(self.config, self._count, doc.pages, pieces)
            for first, end in packer.ranges():
                chunks.append(
                    _chunk(doc, len(chunks), packer.text(first, end), pieces[first], pieces[end - 1])
                )
        return chunks


def chunk_id(doc_id: str, ordinal: int, text: str) -> str:
    """Stable across re-indexing: the same document, position and text give the same id."""
    return hashlib.sha1(f"{doc_id}\x00{ordinal}\x00{text}".encode()).hexdigest()[:16]


def _chunk(doc: Document, ordinal: int, text: str, first: _Piece, last: _Piece) -> Chunk:
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
