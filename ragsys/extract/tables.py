"""Tables: a cheap test for pages that may hold one, and markdown from a table's cell grid.

PyMuPDF's `Table.to_markdown()` re-extracts every cell from the page (a clipped
rawdict per cell) and renders the top row to decide on a header: on the SEC
filings that cost 40% as much as `find_tables()` itself. Here the page's words,
extracted once, are dropped into the cell grid instead, and the first row is the
header (markdown needs one; a merged cell stays empty rather than repeated, and
empty spacer rows are dropped).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ragsys.extract.order import Box

Word = tuple[float, float, float, float, str, int, int, int]  # PyMuPDF's extractWORDS rows
_CELL_GAP = 6.0  # pt of white space between table cells; word spaces are about 3 pt
_ROW_SLACK = 2.0  # pt by which the centres of one row's boxes may differ


def may_hold_table(spans: Sequence[Box]) -> bool:
    """Whether at least two text rows hold side-by-side segments (table cells).

    A table has at least two rows of at least two cells, and cells are set apart
    by more white space than words are. Prose rows are one segment (or two on
    two-column pages, which therefore always pass). Pages that fail give
    `find_tables` nothing to build a table from, ruled or not: it builds cells
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
    first = -1e9
    for box in sorted(spans, key=lambda b: (b[1] + b[3]) / 2):
        centre = (box[1] + box[3]) / 2
        if rows and centre - first < max(_ROW_SLACK, 0.4 * (box[3] - box[1])):
            rows[-1].append(box)
        else:
            rows.append([box])
            first = centre
    return rows


def table_markdown(grid: Sequence[Sequence[Box | None]], words: Sequence[Word]) -> str:
    """Markdown for a cell grid (rows of cell boxes, None for merged cells), filled with `words`."""
    if not grid or not grid[0]:
        return ""
    cells = [["" for _ in row] for row in grid]
    tops: list[float] = []
    for row in grid:  # non-decreasing row tops, so a word's row is a bisection away
        tops.append(max([*tops[-1:], min((c[1] for c in row if c), default=-1e9)]))
    for word in sorted(words, key=lambda w: (w[5], w[6], w[7])):  # block, line, word: reading order
        cx, cy = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
        at = _find_cell(grid, max(0, bisect_right(tops, cy) - 1), cx, cy)
        if at is not None:
            r, c = at
            cells[r][c] = f"{cells[r][c]} {word[4]}" if cells[r][c] else word[4]
    lines = [_row(cells[0]), "|" + "---|" * len(cells[0])]
    lines.extend(_row(row) for row in cells[1:] if any(row))  # spacer rows carry nothing
    return "\n".join(lines)


def _find_cell(
    grid: Sequence[Sequence[Box | None]], guess: int, x: float, y: float
) -> tuple[int, int] | None:
    """The cell holding (x, y): in the guessed row, else anywhere (cells merged across rows)."""
    for r in (guess, *range(len(grid))):
        for c, box in enumerate(grid[r]):
            if box is not None and box[0] <= x <= box[2] and box[1] <= y <= box[3]:
                return r, c
    return None


def _row(cells: list[str]) -> str:
    return "|" + "|".join(cell.replace("|", "\\|") for cell in cells) + "|"


def cell_grid(table: Any) -> list[list[Box | None]]:
    """A PyMuPDF `Table`'s cells as rows of boxes (None where a merged cell continues)."""
    return [[tuple(c) if c is not None else None for c in row.cells] for row in table.rows]
