"""Tiny PDFs made with PyMuPDF for the extraction tests (nothing is shipped as a binary).

Each function writes one file and returns its path. Texts are chosen so a test can
assert exact placement: every sentence names its column, paragraph or cell.
"""

from __future__ import annotations

import time
from pathlib import Path

import pymupdf

from ragsys.extract.pdf import PdfExtractorConfig
from ragsys.types import Document

LETTER = (612, 792)
BODY = 10


def _new_page(doc: pymupdf.Document) -> pymupdf.Page:
    return doc.new_page(width=LETTER[0], height=LETTER[1])  # type: ignore[no-untyped-call,no-any-return]


def _save(doc: pymupdf.Document, path: Path, **kwargs: object) -> Path:
    doc.save(path, **kwargs)  # type: ignore[no-untyped-call]
    doc.close()  # type: ignore[no-untyped-call]
    return path


def column_text(side: str, paragraph: int) -> str:
    return " ".join(f"{side} column paragraph {paragraph} sentence {k} of the study." for k in range(1, 6))


def two_columns(path: Path, paragraphs: int = 3) -> Path:
    """A full-width title over two columns whose paragraphs start at the same heights.

    Aligned paragraph gaps are the trap: a plain XY-cut splits the page there and
    reads left, right, left, right.
    """
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    page = _new_page(doc)
    page.insert_text((72, 60), "A Study Of Two Column Layouts", fontsize=18, fontname="hebo")
    height = 150
    for p in range(paragraphs):
        top = 90 + p * (height + 14)
        for side, x0 in (("Left", 72), ("Right", 318)):
            rect = pymupdf.Rect(x0, top, x0 + 222, top + height)
            page.insert_textbox(rect, column_text(side, p + 1), fontsize=BODY, fontname="helv")
    return _save(doc, path)


TABLE = [
    ["Region", "Revenue", "Units"],
    ["North", "1200", "34"],
    ["South", "950", "27"],
    ["West", "780", "19"],
]


def ruled_table(path: Path) -> Path:
    """A paragraph, then a ruled 4x3 table, then a paragraph."""
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    page = _new_page(doc)
    page.insert_text((72, 80), "Quarterly results by region are shown in the table below.", fontsize=BODY)
    x0, y0, cw, rh = 72, 110, 120, 22
    for r, row in enumerate(TABLE):
        for c, cell in enumerate(row):
            page.insert_text((x0 + c * cw + 6, y0 + r * rh + 15), cell, fontsize=BODY)
    shape = page.new_shape()
    for r in range(len(TABLE) + 1):
        shape.draw_line((x0, y0 + r * rh), (x0 + cw * 3, y0 + r * rh))
    for c in range(4):
        shape.draw_line((x0 + c * cw, y0), (x0 + c * cw, y0 + rh * len(TABLE)))
    shape.finish(width=0.8, color=(0, 0, 0))
    shape.commit()
    page.insert_text((72, y0 + rh * len(TABLE) + 30), "Totals are unaudited and may change.", fontsize=BODY)
    return _save(doc, path)


def headings(path: Path, title: str = "Annual Report", author: str = "Jane Analyst") -> Path:
    """Title (24 pt bold), section (16 pt bold), subsection (12 pt bold), body (10 pt); with metadata."""
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    page = _new_page(doc)
    y = 72.0
    for text, size, font in (
        ("Annual Report", 24, "hebo"),
        ("Introduction to the year", 16, "hebo"),
        ("This report covers the fiscal year and its main events in some detail.", BODY, "helv"),
        ("Revenue growth", 12, "hebo"),
        ("Revenue grew in every region, led by strong demand in the north.", BODY, "helv"),
        ("Outlook", 16, "hebo"),
        ("We expect steady growth next year across all product lines.", BODY, "helv"),
    ):
        page.insert_text((72, y), text, fontsize=size, fontname=font)
        y += size * 2.2
    doc.set_metadata({"title": title, "author": author})  # type: ignore[no-untyped-call]
    return _save(doc, path)


def simple(path: Path, text: str = "Hello from a simple PDF page.", pages: int = 1) -> Path:
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    for n in range(pages):
        _new_page(doc).insert_text((72, 72), f"{text} Page {n + 1}.", fontsize=BODY)
    return _save(doc, path)


def encrypted(path: Path, user_pw: str = "s3cret") -> Path:
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    _new_page(doc).insert_text((72, 72), "Confidential text behind a password.", fontsize=BODY)
    return _save(
        doc, path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=user_pw, owner_pw="owner-" + user_pw
    )


def image_only(path: Path, with_text_page: bool = False) -> Path:
    """A scanned-like page: one image and no text layer (optionally after a normal page)."""
    doc = pymupdf.open()  # type: ignore[no-untyped-call]
    if with_text_page:
        _new_page(doc).insert_text((72, 72), "The only page with real text.", fontsize=BODY)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(200)  # type: ignore[no-untyped-call]
    _new_page(doc).insert_image(pymupdf.Rect(72, 72, 400, 400), pixmap=pix)  # type: ignore[no-untyped-call]
    return _save(doc, path)


def truncated(path: Path, keep: float = 0.6) -> Path:
    """A valid multi-page PDF with its tail (xref table and trailer) cut off."""
    simple(path, "Text that survives truncation.", pages=3)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


class SlowExtractor:
    """Sleeps for files named slow*, so pool tests can prove an overdue worker is killed."""

    def __init__(self, config: PdfExtractorConfig) -> None:
        self._real = config.build()

    def extract(self, path: Path) -> Document:
        if path.name.startswith("slow"):
            time.sleep(60)
        return self._real.extract(path)


def build_slow(config: PdfExtractorConfig) -> SlowExtractor:
    """Module-level, so spawned workers can unpickle it."""
    return SlowExtractor(config)
