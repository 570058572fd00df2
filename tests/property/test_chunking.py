"""Properties of `StructureChunker` on generated documents, under the three token counters the
chunker tests use (whitespace words, the tiny WordPiece and the tiny byte-level BPE).

Contract stated here (see `ragsys.chunk.chunker`): chunks cover every non-whitespace character
of every page; only whitespace may fall between two chunks, because sentences, rows, cells and
headings are trimmed before packing. Each chunk's text is what its offsets say; no chunk is
over `max_tokens` unless `split_long_rows=False` kept an over-long table row whole (then that
chunk is exactly the row); and a table row that fits is never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragsys.chunk.chunker import ChunkConfig, StructureChunker
from ragsys.chunk.spans import row_spans
from ragsys.chunk.tokens import hf_token_counter, whitespace_token_counter
from ragsys.protocols import TokenCounter
from ragsys.types import Block, Chunk, Document, Page
from tests.fixtures.tiny_models import _bpe_tokenizer, _wordpiece_tokenizer

PROFILE = settings.get_profile("property")

VOCAB = (
    "aspirin reduces the risk of heart attack revenue grew ten percent $39,669 million 4.5% "
    "e.g. U.S. Inc. Dr. (in 2023) Q3 10-Q net-sales café naïve 東京 😀 — …"
).split()
# A "word" is a vocabulary word, or any run of non-space, non-bar characters (a long one forces
# the chunker to cut by characters).
WORD = st.one_of(
    st.sampled_from(VOCAB),
    st.text(
        st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), exclude_characters="|"),
        min_size=1,
        max_size=60,
    ),
)


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, min_size=1, max_size=24))
    return " ".join([words[0].capitalize(), *words[1:]]) + draw(st.sampled_from([".", "?", "!", "", '."']))


@st.composite
def paragraphs(draw: st.DrawFn) -> str:
    parts = draw(st.lists(sentences(), min_size=1, max_size=6))
    return "".join(
        p + (draw(st.sampled_from([" ", "  ", "\n"])) if i < len(parts) - 1 else "")
        for i, p in enumerate(parts)
    )


@st.composite
def tables(draw: st.DrawFn) -> str:
    cols = draw(st.integers(1, 6))
    cell = st.lists(WORD, min_size=1, max_size=6).map(" ".join)
    rows = draw(st.lists(st.lists(cell, min_size=cols, max_size=cols), min_size=1, max_size=10))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


BLOCK = st.one_of(
    st.tuples(st.just("paragraph"), paragraphs(), st.just(0)),
    st.tuples(st.just("table"), tables(), st.just(0)),
    st.integers(1, 4).flatmap(
        lambda lvl: st.tuples(
            st.just("heading"),
            st.lists(WORD, min_size=1, max_size=8).map(lambda w: "#" * lvl + " " + " ".join(w)),
            st.just(lvl),
        )
    ),
)
SEP = st.sampled_from(["\n\n", "\n", " \n\n  ", "\n\n\n", "  "])


@st.composite
def pages(draw: st.DrawFn, number: int) -> Page:
    """A page with exact blocks, or one without blocks (paragraphs at blank lines), or an empty one."""
    kind = draw(st.sampled_from(["blocks", "blocks", "blocks", "plain", "empty"]))
    if kind == "empty":
        return Page(number=number, text=draw(st.sampled_from(["", "  \n "])))
    if kind == "plain":
        return Page(number=number, text="\n\n".join(draw(st.lists(paragraphs(), min_size=1, max_size=4))))
    text, blocks = draw(st.sampled_from(["", " ", "\n"])), []
    for i, (kind_, body, level) in enumerate(draw(st.lists(BLOCK, min_size=1, max_size=6))):
        text += draw(SEP) if i else ""
        blocks.append(Block(kind=kind_, text=body, start=len(text), end=len(text) + len(body), level=level))
        text += body
    return Page(number=number, text=text + draw(st.sampled_from(["", "\n", " "])), blocks=tuple(blocks))


@st.composite
def documents(draw: st.DrawFn) -> Document:
    n = draw(st.integers(1, 4))
    ps = tuple(draw(pages(number)) for number in range(1, n + 1))
    return Document(id="d", source="d.pdf", page_count=n, pages=ps, content_hash="x", extractor="test")


@st.composite
def configs(draw: st.DrawFn, split_long_rows: bool = True) -> ChunkConfig:
    max_tokens = draw(st.sampled_from([16, 24, 40, 64]))
    return ChunkConfig(
        max_tokens=max_tokens,
        overlap_tokens=draw(st.integers(0, max_tokens - 1)),
        min_chunk_tokens=draw(st.none() | st.integers(0, max_tokens - 1)),
        split_long_rows=split_long_rows,
    )


_COUNTERS: dict[str, Callable[[], TokenCounter]] = {
    "whitespace": lambda: whitespace_token_counter,
    "wordpiece": lambda: hf_token_counter(_wordpiece_tokenizer()),
    "bpe": lambda: hf_token_counter(_bpe_tokenizer()),
}


@pytest.fixture(scope="module", params=sorted(_COUNTERS))
def counter(request: pytest.FixtureRequest) -> TokenCounter:
    return _COUNTERS[request.param]()


def page_ranges(doc: Document, chunk: Chunk) -> Iterator[tuple[int, int, int]]:
    """(page index, start, end) of the page text a chunk spans, page by page."""
    first, last = chunk.page_start - 1, chunk.page_end - 1
    for i in range(first, last + 1):
        yield i, chunk.start if i == first else 0, chunk.end if i == last else len(doc.pages[i].text)


def source_text(doc: Document, chunk: Chunk) -> str:
    return "\n\n".join(doc.pages[i].text[a:b] for i, a, b in page_ranges(doc, chunk))


def table_rows(doc: Document) -> Iterator[tuple[int, int, int]]:
    for i, page in enumerate(doc.pages):
        for block in page.blocks:
            if block.kind == "table":
                yield from ((i, a, b) for a, b in row_spans(page.text, block.start, block.end))


def cuts(doc: Document, chunk: Chunk, page: int, start: int, end: int) -> bool:
    """Whether the chunk holds part, but not all, of page `page`'s text[start:end]."""
    return any(
        j == page and s < end and start < e and not (s <= start and end <= e)
        for j, s, e in page_ranges(doc, chunk)
    )


@settings(PROFILE, max_examples=30)
@given(doc=documents(), config=configs())
def test_chunks_cover_the_pages_match_their_offsets_fit_the_bound_and_keep_rows_whole(
    counter: TokenCounter, doc: Document, config: ChunkConfig
) -> None:
    chunks = StructureChunker(config, counter).split(doc)
    covered = [bytearray(len(p.text)) for p in doc.pages]
    for chunk in chunks:
        assert 1 <= chunk.page_start <= chunk.page_end <= len(doc.pages)
        assert chunk.text == source_text(doc, chunk)
        assert counter(chunk.text) <= config.max_tokens, chunk.text
        for i, a, b in page_ranges(doc, chunk):
            covered[i][a:b] = b"\x01" * (b - a)
    for page, marks in zip(doc.pages, covered, strict=True):
        missed = [c for c, m in zip(page.text, marks, strict=True) if not m and not c.isspace()]
        assert not missed, f"page {page.number}: {''.join(missed)!r} is in no chunk"
    for i, a, b in table_rows(doc):
        if counter(doc.pages[i].text[a:b]) <= config.max_tokens:  # longer rows may be cut between cells
            assert not any(cuts(doc, c, i, a, b) for c in chunks), f"row {doc.pages[i].text[a:b]!r} was cut"


@settings(PROFILE, max_examples=15)
@given(doc=documents(), config=configs(split_long_rows=False))
def test_without_row_splitting_only_a_lone_long_row_exceeds_the_bound(
    counter: TokenCounter, doc: Document, config: ChunkConfig
) -> None:
    rows = {doc.pages[i].text[a:b] for i, a, b in table_rows(doc)}
    chunks = StructureChunker(config, counter).split(doc)
    for chunk in chunks:
        if counter(chunk.text) > config.max_tokens:
            assert chunk.text in rows, chunk.text
    for i, a, b in table_rows(doc):  # no row is ever cut, whatever its length
        assert not any(cuts(doc, c, i, a, b) for c in chunks), f"row {doc.pages[i].text[a:b]!r} was cut"
