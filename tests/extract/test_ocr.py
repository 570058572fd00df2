"""OCR for real: a page that is only a picture of text is read by Debian's Tesseract through
PyMuPDF's OCR support. Skips (and says why) where tesseract is not installed; `.ci/run`
installs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pymupdf
import pytest

from ragsys.extract import PdfExtractorConfig, extract_many
from ragsys.extract.errors import EmptyDocumentError
from ragsys.extract.pdf import PdfExtractor, find_tessdata

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None or find_tessdata() is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr; .ci/run does it)",
)

LINES = ("Quarterly revenue rose to 29.6 million", "Warehouse automation segment report")


def _scanned(path: Path, lines: tuple[str, ...] = LINES, text_first: bool = True) -> Path:
    """A two-page PDF: a normal text page, then a page that is only a 150-dpi picture of text."""
    source = pymupdf.open()  # type: ignore[no-untyped-call]
    page = source.new_page(width=612, height=792)  # type: ignore[no-untyped-call]
    for i, line in enumerate(lines):
        page.insert_text((72, 100 + 30 * i), line, fontsize=16)  # type: ignore[no-untyped-call]
    picture = page.get_pixmap(dpi=150)  # type: ignore[no-untyped-call]
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    if text_first:
        first = doc.new_page(width=612, height=792)  # type: ignore[no-untyped-call]
        first.insert_text((72, 100), "An ordinary page with a text layer.", fontsize=12)  # type: ignore[no-untyped-call]
    scan = doc.new_page(width=612, height=792)  # type: ignore[no-untyped-call]
    scan.insert_image(scan.rect, pixmap=picture)  # type: ignore[no-untyped-call]
    doc.save(str(path))  # type: ignore[no-untyped-call]
    return path


def test_a_scanned_page_yields_its_words_on_its_own_page_number(tmp_path: Path) -> None:
    doc = PdfExtractorConfig(ocr="auto").build().extract(_scanned(tmp_path / "scan.pdf"))
    first, scanned = doc.pages
    assert first.number == 1 and first.has_text_layer and not first.ocr
    assert scanned.number == 2 and scanned.ocr and not scanned.has_text_layer
    words = scanned.text.lower()
    assert "warehouse" in words and "automation" in words and "29.6" in scanned.text
    assert any("text from OCR" in w and "page 2" in w for w in doc.warnings)


def test_an_image_only_file_is_indexed_through_the_workers(tmp_path: Path) -> None:
    path = _scanned(tmp_path / "only-scan.pdf", text_first=False)
    (result,) = list(extract_many([path], PdfExtractorConfig(ocr="auto"), workers=1))
    assert result.document is not None, result.error
    assert result.document.pages[0].ocr and "revenue" in result.document.pages[0].text.lower()


def test_a_blank_scan_is_still_a_typed_error_not_a_crash(tmp_path: Path) -> None:
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(255)  # type: ignore[no-untyped-call]
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 400, 400), pixmap=pix)  # type: ignore[no-untyped-call]
    doc.save(str(tmp_path / "blank.pdf"))  # type: ignore[no-untyped-call]
    extractor = PdfExtractor(PdfExtractorConfig(ocr="auto"), tessdata=find_tessdata())
    with pytest.raises(EmptyDocumentError, match="blank, or OCR failed"):
        extractor.extract(tmp_path / "blank.pdf")
