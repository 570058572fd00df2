"""Plain-text and Markdown files: paragraphs, headings, tables, code, bad UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.extract import EmptyDocumentError, PdfExtractor
from tests.fixtures.documents import assert_offsets


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
