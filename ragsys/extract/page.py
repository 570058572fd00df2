"""One PyMuPDF page to content units in reading order: text blocks and tables.

Text comes from one `extractDICT` pass (spans carry font size and weight, which
heading detection needs); tables from `page.find_tables()`. Spans whose centre
lies inside a table's box are dropped from the text, so a table's cells appear
once, as markdown, and not again as a paragraph.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import pymupdf

from ragsys.extract.headings import Line
from ragsys.extract.order import Box, reading_order

# Plain-text flags (ligatures and whitespace kept, clipped to the page, CID for
# unknown unicode) but no images: the default "dict" flags embed every image's
# bytes, which costs more than the text itself on scanned pages.
TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT
_BOLD_FLAG = 16
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demi")
_BOLD_SHARE = 0.9  # a line is bold when at least this share of its characters is
_TABLE_MARGIN = 1.0  # pt around a table's box that still counts as inside it
_CELL_GAP = 6.0  # pt of white space between table cells; word spaces are about 3 pt
_UPRIGHT_SINE = 0.05  # lines tilted more than about 3 degrees are rotated text
_ROW_SLACK = 2.0  # pt by which the centres of one row's boxes may differ


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
        table_units = find_table_units(page, problems)
    else:
        table_units = []
    boxes = [t.bbox for t in table_units]
    text_units = [u for block in blocks if (u := _text_unit(block, boxes)) is not None]
    units: list[Unit] = [*text_units, *table_units]
    ordered = [units[i] for i in reading_order([u.bbox for u in units])]
    texts = [line.text for u in text_units for line in u.lines] + [t.markdown for t in table_units]
    text = "".join(texts)
    chars = sum(1 for ch in text if not ch.isspace())
    return PageContent(ordered, chars, text.count("\ufffd"), problems)


def find_table_units(page: pymupdf.Page, problems: list[str]) -> list[TableUnit]:
    """Tables as markdown; a table PyMuPDF cannot render is reported, not fatal."""
    try:
        finder = page.find_tables()  # type: ignore[no-untyped-call]
    except Exception as exc:  # third-party heuristics fail in many ways
        problems.append(f"table detection failed ({type(exc).__name__}: {exc})")
        return []
    units: list[TableUnit] = []
    for table in finder.tables if finder is not None else []:
        try:
            markdown = table.to_markdown().strip()
        except Exception as exc:
            problems.append(f"a table could not be rendered ({type(exc).__name__})")
            continue
        if any(ch.isalnum() for ch in markdown):
            units.append(TableUnit(markdown, tuple(table.bbox)))
    return units


def may_hold_table(spans: Sequence[Box]) -> bool:
    """Whether at least two text rows hold side-by-side segments (table cells).

    A table has at least two rows of at least two cells, and cells are set apart
    by more white space than words are. Prose rows are one segment (or two on
    two-column pages, which therefore always pass). Pages that fail cannot give
    `find_tables` anything to build a table from, ruled or not: it builds cells
    from the text. Lossless on the 20 SEC 10-Q filings (eval/bench/extract.py).
    """
    rows = 0
    for row in _rows(spans):
        row.sort()
        right = row[0][2]
        for box in row[1:]:
            if box[0] - right > _CELL_GAP:
                rows += 1
                break
            right = max(right, box[2])
        if rows >= 2:
            return True
    return False


def _rows(spans: Sequence[Box]) -> list[list[Box]]:
    """Group boxes whose vertical centres (nearly) coincide: the visual rows of a page."""
    rows: list[list[Box]] = []
    last = -1e9
    for box in sorted(spans, key=lambda b: (b[1] + b[3]) / 2):
        centre = (box[1] + box[3]) / 2
        if rows and centre - last < max(_ROW_SLACK, 0.4 * (box[3] - box[1])):
            rows[-1].append(box)
        else:
            rows.append([box])
            last = centre
    return rows


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
        spans = [s for s in raw.get("spans", ()) if not _inside_any(s["bbox"], tables)]
        text = "".join(s["text"] for s in spans)
        if not text.strip():
            continue
        upright = abs(raw.get("dir", (1.0, 0.0))[1]) < _UPRIGHT_SINE
        lines.append(_line(spans, text, upright))
        for span in spans:
            if span["text"].strip():
                bbox = _union(bbox, tuple(span["bbox"]))
    if not lines or bbox is None:
        return None
    return TextUnit(tuple(lines), bbox)


def _line(spans: Sequence[dict[str, Any]], text: str, upright: bool) -> Line:
    sizes: Counter[float] = Counter()
    bold = total = 0
    for span in spans:
        n = len(span["text"].strip())
        sizes[round(span["size"] * 2) / 2] += n
        total += n
        if span["flags"] & _BOLD_FLAG or any(b in span["font"].lower() for b in _BOLD_NAMES):
            bold += n
    size = max(sizes, key=lambda s: (sizes[s], s))
    return Line(text=text, size=size, bold=total > 0 and bold >= _BOLD_SHARE * total, upright=upright)


def _inside_any(bbox: Sequence[float], tables: Sequence[Box]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    m = _TABLE_MARGIN
    return any(t[0] - m <= cx <= t[2] + m and t[1] - m <= cy <= t[3] + m for t in tables)


def _union(a: Box | None, b: Sequence[float]) -> Box:
    if a is None:
        return (b[0], b[1], b[2], b[3])
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
