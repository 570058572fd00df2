"""One PyMuPDF page to content units in reading order: text blocks and tables.

Text comes from one `extractDICT` pass (spans carry font size and weight, which
heading detection needs); tables from `page.find_tables()`. Spans whose centre
lies inside a table's box are dropped from the text, so a table's cells appear
once, as markdown, and not again as a paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import pymupdf

from ragsys.extract.headings import Line
from ragsys.extract.order import Box, reading_order
from ragsys.extract.tables import cell_grid, may_hold_table, table_markdown

# Plain-text flags (ligatures and whitespace kept, clipped to the page, CID for
# unknown unicode) but no images: the default "dict" flags embed every image's
# bytes, which costs more than the text itself on scanned pages.
TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT
_BOLD_FLAG = 16
_BOLD_FONT = re.compile("bold|black|heavy|demi", re.IGNORECASE)  # for fonts whose flags omit weight
_BOLD_SHARE = 0.9  # a line is bold when at least this share of its characters is
_TABLE_MARGIN = 1.0  # pt around a table's box that still counts as inside it
_UPRIGHT_SINE = 0.05  # lines tilted more than about 3 degrees are rotated text


class TextUnit(NamedTuple):
    lines: tuple[Line, ...]
    bbox: Box


class TableUnit(NamedTuple):
    markdown: str
    bbox: Box


Unit = TextUnit | TableUnit


class PageContent(NamedTuple):
    units: list[Unit]  # reading order
    chars: int  # non-whitespace characters in the text layer (tables included)
    unmapped: int  # U+FFFD characters: glyphs whose font has no unicode mapping
    problems: list[str]


def page_content(
    page: pymupdf.Page, *, tables: bool, prefilter: bool, textpage: pymupdf.TextPage | None = None
) -> PageContent:
    """Units of one page in reading order; `textpage` lets OCR supply the text layer.

    With `prefilter`, `find_tables` (about 0.2 s a page, most of it PyMuPDF's layout
    model) runs only on pages where `may_hold_table` says a table could be.
    """
    problems: list[str] = []
    tp = textpage if textpage is not None else page.get_textpage(flags=TEXT_FLAGS)
    blocks = [b for b in tp.extractDICT()["blocks"] if b.get("type", 0) == 0]
    if tables and (not prefilter or may_hold_table(_span_boxes(blocks))):
        table_units = find_table_units(page, tp, problems)
    else:
        table_units = []
    boxes = [t.bbox for t in table_units]
    text_units = [u for block in blocks if (u := _text_unit(block, boxes)) is not None]
    units: list[Unit] = [*text_units, *table_units]
    ordered = [units[i] for i in reading_order([u.bbox for u in units])]
    texts = [line.text for u in text_units for line in u.lines] + [t.markdown for t in table_units]
    text = "".join(texts)
    chars = len("".join(text.split()))
    return PageContent(ordered, chars, text.count("\ufffd"), problems)


def find_table_units(page: pymupdf.Page, textpage: pymupdf.TextPage, problems: list[str]) -> list[TableUnit]:
    """Tables as markdown; a table that cannot be rendered is reported, not fatal."""
    try:
        finder = page.find_tables()  # type: ignore[no-untyped-call]
    except Exception as exc:  # third-party heuristics fail in many ways
        problems.append(f"table detection failed ({type(exc).__name__}: {exc})")
        return []
    units: list[TableUnit] = []
    tables = finder.tables if finder is not None else []
    words = textpage.extractWORDS() if tables else []  # type: ignore[no-untyped-call]
    for table in tables:
        try:
            markdown = table_markdown(cell_grid(table), words)
        except Exception as exc:
            problems.append(f"a table could not be rendered ({type(exc).__name__})")
            continue
        if any(ch.isalnum() for ch in markdown):
            units.append(TableUnit(markdown, tuple(table.bbox)))
    return units


def _span_boxes(blocks: Sequence[dict[str, Any]]) -> list[Box]:
    return [
        tuple(span["bbox"])
        for block in blocks
        for line in block.get("lines", ())
        for span in line.get("spans", ())
        if span["text"].strip()
    ]


def _text_unit(block: dict[str, Any], tables: Sequence[Box]) -> TextUnit | None:
    lines: list[Line] = []
    bbox: Box | None = None
    for raw in block.get("lines", ()):
        spans = raw.get("spans", ())
        kept = [s for s in spans if not _inside_any(s["bbox"], tables)] if tables else spans
        text = "".join(s["text"] for s in kept)
        if not text.strip():
            continue
        upright = abs(raw.get("dir", (1.0, 0.0))[1]) < _UPRIGHT_SINE
        lines.append(_line(kept, text, upright))
        if len(kept) == len(spans):
            bbox = _union(bbox, raw["bbox"])
        else:
            for span in kept:
                bbox = _union(bbox, span["bbox"])
    if not lines or bbox is None:
        return None
    return TextUnit(tuple(lines), bbox)


def _line(spans: Sequence[dict[str, Any]], text: str, upright: bool) -> Line:
    """Size and weight by character count (a footnote mark does not make a line small)."""
    if len(spans) == 1:  # most lines: skip the counting
        span = spans[0]
        return Line(text, round(span["size"] * 2) / 2, _is_bold(span), upright)
    sizes: dict[float, int] = {}
    bold = total = 0
    for span in spans:
        n = len(span["text"].strip())
        size = round(span["size"] * 2) / 2
        sizes[size] = sizes.get(size, 0) + n
        total += n
        if _is_bold(span):
            bold += n
    size = max(sizes, key=lambda s: (sizes[s], s))
    return Line(text=text, size=size, bold=total > 0 and bold >= _BOLD_SHARE * total, upright=upright)


def _is_bold(span: dict[str, Any]) -> bool:
    return bool(span["flags"] & _BOLD_FLAG or _BOLD_FONT.search(span["font"]))


def _inside_any(bbox: Sequence[float], tables: Sequence[Box]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    m = _TABLE_MARGIN
    return any(t[0] - m <= cx <= t[2] + m and t[1] - m <= cy <= t[3] + m for t in tables)


def _union(a: Box | None, b: Sequence[float]) -> Box:
    if a is None:
        return (b[0], b[1], b[2], b[3])
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
