"""Extraction: generated PDFs (tests/pdfgen.py), text files, typed errors, the worker pool."""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import TypeAdapter

from ragsys.extract import (
    SUPPORTED_SUFFIXES,
    EmptyDocumentError,
    EncryptedError,
    ExtractionError,
    ExtractorConfig,
    MalformedError,
    PdfExtractor,
    PdfExtractorConfig,
    UnstructuredExtractor,
    UnstructuredExtractorConfig,
    UnsupportedFormatError,
    extract_many,
    extractor_for,
)
from ragsys.extract.headings import Line, block_parts, heading_style, join_lines
from ragsys.extract.order import reading_order
from ragsys.extract.runtime import use_lean_layout_model
from ragsys.extract.tables import may_hold_table, table_markdown
from ragsys.extract.unstructured import elements_to_pages
from ragsys.types import Document
from tests import pdfgen

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def extractor() -> PdfExtractor:
    return PdfExtractorConfig(ocr="off").build()


def assert_offsets(doc: Document) -> None:
    """The invariant every consumer relies on: blocks index page text, separated by blank lines."""
    for page in doc.pages:
        for block in page.blocks:
            assert page.text[block.start : block.end] == block.text
            assert block.text and block.text == block.text.strip()
        assert "\n\n".join(b.text for b in page.blocks) == page.text


def body(doc: Document) -> str:
    return "\n\n".join(p.text for p in doc.pages)


# ---- layout -----------------------------------------------------------------------------------


def test_two_columns_are_read_one_after_the_other(tmp_path: Path, extractor: PdfExtractor) -> None:
    doc = extractor.extract(pdfgen.two_columns(tmp_path / "two.pdf"))
    text = body(doc)
    last_left = text.rindex("Left column")
    first_right = text.index("Right column")
    assert last_left < first_right
    for p in (1, 2, 3):  # every paragraph is whole: no interleaving inside a column either
        assert pdfgen.column_text("Left", p) in text and pdfgen.column_text("Right", p) in text
    assert doc.pages[0].blocks[0].kind == "heading" and doc.title == "A Study Of Two Column Layouts"
    assert_offsets(doc)


def test_reading_order_merges_strips_split_by_aligned_gaps() -> None:
    # Two columns, each with three paragraphs at the same heights, and a title on top.
    title = (72.0, 40.0, 540.0, 60.0)
    left = [(72.0, 80.0 + k * 100, 290.0, 160.0 + k * 100) for k in range(3)]
    right = [(320.0, 80.0 + k * 100, 540.0, 160.0 + k * 100) for k in range(3)]
    boxes = [right[1], left[0], title, right[0], left[2], right[2], left[1]]
    order = [boxes[i] for i in reading_order(boxes)]
    assert order == [title, *left, *right]


def test_reading_order_reads_tables_row_by_row() -> None:
    # A label column and two narrow number columns: rows, not columns.
    rows = [
        [(72.0, y, 250.0, y + 10), (400.0, y, 440.0, y + 10), (480.0, y, 520.0, y + 10)]
        for y in (100, 120, 140)
    ]
    boxes = [b for row in rows for b in row]
    assert [boxes[i] for i in reading_order(boxes)] == boxes


def test_table_is_markdown_and_its_cells_are_not_repeated(tmp_path: Path, extractor: PdfExtractor) -> None:
    doc = extractor.extract(pdfgen.ruled_table(tmp_path / "table.pdf"))
    page = doc.pages[0]
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1
    rows = tables[0].text.splitlines()
    assert all(row.startswith("|") and row.endswith("|") for row in rows)
    assert rows[0].replace(" ", "") == "|Region|Revenue|Units|"
    assert "|North|1200|34|" in [r.replace(" ", "") for r in rows]
    paragraphs = " ".join(b.text for b in page.blocks if b.kind == "paragraph")
    for cell in ("Region", "North", "1200", "South", "780"):
        assert cell not in paragraphs
    assert "Quarterly results" in paragraphs and "unaudited" in paragraphs
    assert [b.kind for b in page.blocks] == ["paragraph", "table", "paragraph"]
    assert_offsets(doc)


def test_tables_off_keeps_cells_as_text(tmp_path: Path) -> None:
    doc = PdfExtractorConfig(tables=False, ocr="off").build().extract(pdfgen.ruled_table(tmp_path / "t.pdf"))
    assert all(b.kind != "table" for b in doc.pages[0].blocks)
    assert "North" in doc.pages[0].text


def test_heading_levels_follow_font_size(tmp_path: Path, extractor: PdfExtractor) -> None:
    doc = extractor.extract(pdfgen.headings(tmp_path / "h.pdf"))
    found = [(b.text, b.level) for b in doc.pages[0].blocks if b.kind == "heading"]
    assert found == [
        ("Annual Report", 1),
        ("Introduction to the year", 2),
        ("Revenue growth", 3),
        ("Outlook", 2),
    ]
    assert sum(b.kind == "paragraph" for b in doc.pages[0].blocks) == 3
    assert_offsets(doc)


def test_metadata_and_document_fields(tmp_path: Path, extractor: PdfExtractor) -> None:
    path = pdfgen.headings(tmp_path / "meta.pdf", title="Metadata Title", author="A. Author")
    doc = extractor.extract(path)
    assert (doc.title, doc.author, doc.page_count) == ("Metadata Title", "A. Author", 1)
    assert doc.id == doc.source == str(path)
    assert doc.extractor == "pymupdf" and doc.pages[0].number == 1
    import hashlib

    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_heading_rules_on_lines() -> None:
    lines = [
        Line("Title", 20, True),
        Line("Intro", 14, True),
        Line("1", 14, False),
        Line("Body text here.", 10, False),
    ]
    style = heading_style(lines + [Line("More body text " * 5, 10, False)])
    assert style.body_size == 10 and style.levels == {20: 1, 14: 2}
    parts = block_parts(
        [Line("1", 14, False), Line("Methods", 14, False), Line("We did it.", 10, False)], style
    )
    assert [(p.kind, p.text, p.level) for p in parts] == [
        ("heading", "1 Methods", 2),
        ("paragraph", "We did it.", 0),
    ]
    bold_sentence = block_parts([Line("This whole line is bold.", 10, True)], style)
    assert bold_sentence[0].kind == "paragraph"  # ends like a sentence: emphasis, not a heading
    assert join_lines(["exam-", "ple of it"]) == "example of it"


# ---- failures -----------------------------------------------------------------------------------


def test_encrypted_needs_the_right_password(tmp_path: Path) -> None:
    path = pdfgen.encrypted(tmp_path / "enc.pdf", user_pw="s3cret")
    with pytest.raises(EncryptedError) as missing:
        PdfExtractorConfig().build().extract(path)
    assert str(path) in str(missing.value) and "--password" in str(missing.value)
    with pytest.raises(EncryptedError, match="none of the 2 passwords"):
        PdfExtractorConfig(passwords=("nope", "wrong")).build().extract(path)
    doc = PdfExtractorConfig(passwords=("wrong", "s3cret")).build().extract(path)
    assert "Confidential text" in doc.pages[0].text


def test_truncated_file_is_repaired(tmp_path: Path, extractor: PdfExtractor) -> None:
    doc = extractor.extract(pdfgen.truncated(tmp_path / "cut.pdf", keep=0.9))
    assert any("repaired" in w for w in doc.warnings)
    assert "Page 3" in doc.pages[2].text


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.5, 0.6, 0.75])
def test_truncated_file_never_crashes(tmp_path: Path, extractor: PdfExtractor, keep: float) -> None:
    path = pdfgen.truncated(tmp_path / "cut.pdf", keep=keep)
    try:
        doc = extractor.extract(path)
    except (MalformedError, EmptyDocumentError) as err:
        assert err.path == str(path) and err.reason
    else:
        assert any("repaired" in w for w in doc.warnings)
        assert_offsets(doc)


def test_empty_and_not_a_pdf(tmp_path: Path, extractor: PdfExtractor) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match="0 bytes"):
        extractor.extract(empty)
    fake = tmp_path / "fake.pdf"
    fake.write_text("<html><body>not a pdf</body></html>")
    with pytest.raises(UnsupportedFormatError, match="HTML"):
        extractor.extract(fake)
    other = tmp_path / "sheet.xlsx"
    other.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormatError, match="xlsx"):
        extractor.extract(other)
    with pytest.raises(ExtractionError, match="cannot read"):
        extractor.extract(tmp_path / "missing.pdf")


def test_image_only_page_is_reported(tmp_path: Path, extractor: PdfExtractor) -> None:
    doc = extractor.extract(pdfgen.image_only(tmp_path / "mixed.pdf", with_text_page=True))
    assert [p.has_text_layer for p in doc.pages] == [True, False]
    assert doc.pages[1].text == "" and not doc.pages[1].ocr
    assert any("no text layer" in w and "page 2;" in w and "OCR is off" in w for w in doc.warnings)
    no_ocr = PdfExtractor(PdfExtractorConfig(ocr="auto"), tessdata=None)  # as if tesseract were missing
    with pytest.raises(EmptyDocumentError, match="no page has a text layer") as err:
        no_ocr.extract(pdfgen.image_only(tmp_path / "scan.pdf"))
    assert "tesseract" in str(err.value)


def test_pages_without_text_are_ocrd_when_tesseract_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymupdf

    donor = pymupdf.open(pdfgen.simple(tmp_path / "donor.pdf", "Recognized words"))  # type: ignore[no-untyped-call]
    donor_page = donor[0]  # OCR is faked: the text layer of another page stands in for tesseract's
    calls: list[dict[str, object]] = []

    def fake_ocr(page: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return donor_page.get_textpage(flags=kwargs["flags"])

    monkeypatch.setattr(pymupdf.Page, "get_textpage_ocr", fake_ocr)
    doc = PdfExtractor(PdfExtractorConfig(), tessdata="/fake/tessdata").extract(
        pdfgen.image_only(tmp_path / "scan.pdf", with_text_page=True)
    )
    assert len(calls) == 1 and calls[0]["tessdata"] == "/fake/tessdata" and calls[0]["full"] is True
    scanned = doc.pages[1]
    assert scanned.ocr and not scanned.has_text_layer and "Recognized words" in scanned.text
    assert not doc.pages[0].ocr and any("text from OCR" in w for w in doc.warnings)
    off = PdfExtractor(PdfExtractorConfig(ocr="off"), tessdata="/fake/tessdata")
    assert not off.extract(pdfgen.image_only(tmp_path / "scan2.pdf", with_text_page=True)).pages[1].ocr


def test_errors_name_file_reason_fix_and_pickle() -> None:
    err = EncryptedError("/x/a.pdf", "the PDF is encrypted")
    assert str(err) == "/x/a.pdf: the PDF is encrypted (fix: " + EncryptedError.fix + ")"
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.path, again.reason) == (EncryptedError, err.path, err.reason)


# ---- text and markdown ------------------------------------------------------------------------


def test_plain_text_paragraphs(tmp_path: Path, extractor: PdfExtractor) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("First paragraph\nstill first.\n\n\nSecond paragraph.\n")
    doc = extractor.extract(path)
    assert [b.text for b in doc.pages[0].blocks] == ["First paragraph\nstill first.", "Second paragraph."]
    assert doc.page_count == 1 and doc.warnings == ()
    assert_offsets(doc)


def test_markdown_headings_tables_and_code(tmp_path: Path, extractor: PdfExtractor) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\nIntro text.\n\n## Setup ##\n- step one\n- step two\n\n"
        "| key | value |\n|-----|:-----:|\n| a | 1 |\n| b | 2 |\n\n```\n# not a heading\n\nstill code\n```\n"
    )
    doc = extractor.extract(path)
    kinds = [(b.kind, b.level, b.text) for b in doc.pages[0].blocks]
    assert kinds[:4] == [
        ("heading", 1, "Guide"),
        ("paragraph", 0, "Intro text."),
        ("heading", 2, "Setup"),
        ("paragraph", 0, "- step one\n- step two"),
    ]
    assert kinds[4] == ("table", 0, "| key | value |\n|-----|:-----:|\n| a | 1 |\n| b | 2 |")
    assert kinds[5][0] == "paragraph" and "# not a heading" in kinds[5][2]
    assert doc.title == "Guide"
    assert_offsets(doc)


def test_invalid_utf8_is_replaced_with_a_warning(tmp_path: Path, extractor: PdfExtractor) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    doc = extractor.extract(path)
    assert doc.pages[0].text == "caf\ufffd au lait"
    assert len(doc.warnings) == 1 and "UTF-8" in doc.warnings[0]
    blank = tmp_path / "blank.md"
    blank.write_text("  \n\n")
    with pytest.raises(EmptyDocumentError):
        extractor.extract(blank)


# ---- configs ----------------------------------------------------------------------------------


def test_configs_round_trip_and_build(tmp_path: Path) -> None:
    adapter: TypeAdapter[PdfExtractorConfig | UnstructuredExtractorConfig] = TypeAdapter(ExtractorConfig)
    for config in (PdfExtractorConfig(passwords=("a",), tables=False), UnstructuredExtractorConfig()):
        assert adapter.validate_python(json.loads(json.dumps(config.model_dump()))) == config
    assert isinstance(extractor_for(PdfExtractorConfig()), PdfExtractor)
    assert ".docx" in SUPPORTED_SUFFIXES["unstructured"] and ".md" in SUPPORTED_SUFFIXES["pymupdf"]
    with pytest.raises(ValueError):
        PdfExtractorConfig(timeout_s=0)
    assert use_lean_layout_model()  # PyMuPDF's layout model was rebuilt single-threaded


def test_table_prefilter_needs_two_rows_of_cells() -> None:
    prose = [(72.0, y, 540.0, y + 10) for y in range(100, 300, 12)]
    assert not may_hold_table(prose)
    one_row = [*prose, (72.0, 400.0, 200.0, 410.0), (300.0, 400.0, 340.0, 410.0)]
    assert not may_hold_table(one_row)
    two_rows = [*one_row, (72.0, 414.0, 200.0, 424.0), (300.0, 414.0, 340.0, 424.0)]
    assert may_hold_table(two_rows)


def test_table_markdown_fills_cells_from_words() -> None:
    grid = [
        [(0.0, 0.0, 50.0, 10.0), (50.0, 0.0, 100.0, 10.0)],
        [(0.0, 10.0, 50.0, 30.0), (50.0, 10.0, 100.0, 20.0)],
        [None, (50.0, 20.0, 100.0, 30.0)],  # the first cell is merged into the row above
    ]
    words = [
        (2.0, 1.0, 20.0, 9.0, "Item", 0, 0, 0),
        (52.0, 1.0, 70.0, 9.0, "a|b", 0, 1, 0),
        (2.0, 11.0, 20.0, 19.0, "Total", 1, 0, 0),
        (22.0, 21.0, 40.0, 29.0, "cost", 1, 0, 1),
        (52.0, 11.0, 70.0, 19.0, "1", 1, 1, 0),
        (52.0, 21.0, 70.0, 29.0, "2", 1, 2, 0),
        (200.0, 1.0, 220.0, 9.0, "outside", 2, 0, 0),
    ]
    assert table_markdown(grid, words) == "|Item|a\\|b|\n|---|---|\n|Total cost|1|\n||2|"


# ---- unstructured (mapping tested with a fake partition; the library is optional) ------------


def _element(category: str, text: str, page: int | None = 1, **meta: object) -> SimpleNamespace:
    return SimpleNamespace(category=category, text=text, metadata=SimpleNamespace(page_number=page, **meta))


def test_unstructured_elements_map_to_pages(tmp_path: Path) -> None:
    elements = [
        _element("Title", "Report", category_depth=0),
        _element("NarrativeText", "Some text."),
        _element("Table", "a b", text_as_html="<table><tr><td>a</td><td>b</td></tr></table>"),
        _element("PageBreak", ""),
        _element("Title", "Part two", page=3, category_depth=1),
        _element("ListItem", "an item", page=3),
    ]
    calls: list[dict[str, object]] = []

    def partition(**kwargs: object) -> list[SimpleNamespace]:
        calls.append(kwargs)
        return elements

    path = tmp_path / "memo.html"
    path.write_text("<p>x</p>")
    doc = UnstructuredExtractor(UnstructuredExtractorConfig(), partition).extract(path)
    assert calls == [{"filename": str(path), "strategy": "fast"}]
    assert [(b.kind, b.level, b.text) for b in doc.pages[0].blocks] == [
        ("heading", 1, "Report"),
        ("paragraph", 0, "Some text."),
        ("table", 0, "<table><tr><td>a</td><td>b</td></tr></table>"),
    ]
    assert [p.number for p in doc.pages] == [1, 2, 3] and not doc.pages[1].has_text_layer
    assert [b.level for b in doc.pages[2].blocks] == [2, 0]
    assert doc.extractor == "unstructured" and doc.title == "Report"
    assert_offsets(doc)
    assert elements_to_pages([]) == elements_to_pages([_element("Image", "")])


def test_unstructured_checks_pdf_passwords_first(tmp_path: Path) -> None:
    path = pdfgen.encrypted(tmp_path / "enc.pdf", user_pw="pw")
    seen: list[object] = []

    def partition(**kwargs: object) -> list[SimpleNamespace]:
        seen.append(kwargs.get("password"))
        return [_element("NarrativeText", "unlocked")]

    with pytest.raises(EncryptedError):
        UnstructuredExtractor(UnstructuredExtractorConfig(), partition).extract(path)
    UnstructuredExtractor(UnstructuredExtractorConfig(passwords=("x", "pw")), partition).extract(path)
    assert seen == ["pw"]


def test_unstructured_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "unstructured.partition.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'ragsys\[unstructured\]'"):
        UnstructuredExtractorConfig().build()


# ---- the pool ---------------------------------------------------------------------------------


def test_extract_many_kills_an_overdue_worker_and_goes_on(tmp_path: Path) -> None:
    paths = [tmp_path / "a.txt", tmp_path / "slow.txt", tmp_path / "b.txt", tmp_path / "bad.pdf"]
    for p in paths:
        p.write_text(f"text of {p.name}")
    seen: list[str] = []
    start = time.monotonic()
    results = list(
        extract_many(
            paths,
            PdfExtractorConfig(),
            workers=2,
            timeout_s=4.0,
            on_result=lambda r: seen.append(r.path),
            build=pdfgen.build_slow,
        )
    )
    assert time.monotonic() - start < 40  # the slow file sleeps 60 s: it was killed
    by_path = {r.path: r for r in results}
    assert sorted(by_path) == sorted(str(p) for p in paths) and sorted(seen) == sorted(by_path)
    slow = by_path[str(tmp_path / "slow.txt")]
    assert (
        slow.document is None and slow.error_type == "ExtractionTimeout" and "slow.txt" in (slow.error or "")
    )
    assert by_path[str(tmp_path / "bad.pdf")].error_type == "UnsupportedFormatError"
    for name in ("a.txt", "b.txt"):
        document = by_path[str(tmp_path / name)].document
        assert document is not None and document.pages[0].text == f"text of {name}"


def test_extract_many_in_process_keeps_order_and_times_out(tmp_path: Path) -> None:
    paths = [tmp_path / "one.txt", tmp_path / "slow.md", tmp_path / "two.md"]
    for p in paths:
        p.write_text("# Hi\n\nthere")
    start = time.monotonic()
    results = list(
        extract_many(paths, PdfExtractorConfig(), workers=1, timeout_s=0.5, build=pdfgen.build_slow)
    )
    assert time.monotonic() - start < 10
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [r.error_type for r in results] == [None, "ExtractionTimeout", None]


@pytest.mark.slow
def test_real_hard_pdfs_yield_text_or_typed_errors() -> None:
    manifest = SHARED_DATA / "pdfs" / "manifest.json"
    if not manifest.exists():
        pytest.skip(f"real data not found at {manifest.parent}")
    entries = [e for e in json.loads(manifest.read_text()) if e["file"].lower().endswith(".pdf")]
    passwords = tuple(sorted({e["password"] for e in entries if e.get("password")}))
    paths = [manifest.parent / e["file"] for e in entries]
    config = PdfExtractorConfig(passwords=passwords, timeout_s=120)
    for result in extract_many(paths, config, workers=2):
        assert result.document is not None or result.error_type in {
            "EncryptedError",
            "MalformedError",
            "EmptyDocumentError",
            "UnsupportedFormatError",
            "ExtractionTimeout",
        }, result
        if result.document is not None:
            assert_offsets(result.document)


def test_unstructured_reads_markdown_and_html_offline(tmp_path: Path) -> None:
    """The real library (the extra is installed by `make test`), with no model download."""
    pytest.importorskip("unstructured.partition.auto")
    from ragsys.extract import UnstructuredExtractorConfig

    md = tmp_path / "a.md"
    md.write_text("# Title\n\nSome paragraph about robots.\n", encoding="utf-8")
    html = tmp_path / "b.html"
    html.write_text("<html><body><h1>Head</h1><p>Para text.</p></body></html>", encoding="utf-8")
    extractor = UnstructuredExtractorConfig().build()
    for path, heading in ((md, "Title"), (html, "Head")):
        doc = extractor.extract(path)
        blocks = doc.pages[0].blocks
        assert doc.extractor == "unstructured" and blocks[0].kind == "heading" and blocks[0].text == heading
        assert all(doc.pages[0].text[b.start : b.end] == b.text for b in blocks)
