"""PDF extraction with PyMuPDF on generated PDFs (tests/fixtures/pdfgen.py): layout, tables,
headings, metadata, and every way a file can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.extract import (
    EmptyDocumentError,
    EncryptedError,
    ExtractionError,
    MalformedError,
    PdfExtractor,
    PdfExtractorConfig,
    UnsupportedFormatError,
)
from ragsys.types import Document
from tests.fixtures import pdfgen
from tests.fixtures.documents import assert_offsets


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
