"""Reading order for the boxes on a page: columns are read one after another.

A recursive XY-cut. The page is cut into horizontal *strips* wherever a gap runs
across the whole width; a strip with a vertical gap is cut into side-by-side
pieces read left to right, and each piece is ordered again. That alone reads a
two-column page correctly only until both columns happen to have a gap at the
same height (paragraph breaks on a shared baseline grid do): the cut would then
yield left-top, right-top, left-bottom, right-bottom. So consecutive strips that
share a vertical gutter are merged back into a *section*, and a section whose
columns look like text columns (wide, of similar width) is read column by column.
Sections whose "columns" are narrow or unequal are table-like (label | numbers)
and are read strip by strip, i.e. row by row.

Boxes are `(x0, y0, x1, y1)` in points, y growing downwards (PyMuPDF's convention).
Pure functions; no PyMuPDF import, so it is testable with plain tuples.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

Box = tuple[float, float, float, float]
Span = tuple[float, float]

# Boxes overlapping by less than this (pt) still count as separated: ascenders
# and descenders of adjacent lines overlap a little.
_Y_SLACK = 1.0
# The narrowest vertical gap that separates pieces within a strip (pt).
_MIN_GAP = 3.0
# The narrowest gutter between text columns (pt); LaTeX and Word use 12-25 pt.
_MIN_GUTTER = 6.0
# Text columns are each at least this share of the section's width, and the
# narrowest is at least this share of the widest.
_MIN_COLUMN_SHARE = 0.2
_MIN_COLUMN_RATIO = 0.5
# Deeper recursion only happens on pathological layouts.
_MAX_DEPTH = 40


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """Indices of `boxes` in reading order (stable for equal positions)."""
    return _order(list(range(len(boxes))), boxes, 0)


def _order(ids: list[int], boxes: Sequence[Box], depth: int) -> list[int]:
    if len(ids) <= 1:
        return ids
    if depth > _MAX_DEPTH:  # pathological layouts (staircases of boxes): plain top-down order
        return _top_down(ids, boxes)
    strips = _strips(ids, boxes)
    if len(strips) == 1:
        return _order_strip(strips[0], boxes, depth)
    out: list[int] = []
    for section in _sections(strips, boxes):
        out.extend(_order_section(section, boxes, depth))
    return out


def _top_down(ids: list[int], boxes: Sequence[Box]) -> list[int]:
    return sorted(ids, key=lambda i: (boxes[i][1], boxes[i][0], i))


def _strips(ids: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """Split into runs of vertically overlapping boxes, top to bottom."""
    ordered = _top_down(ids, boxes)
    strips: list[list[int]] = [[ordered[0]]]
    bottom = boxes[ordered[0]][3]
    for i in ordered[1:]:
        if boxes[i][1] >= bottom - _Y_SLACK:
            strips.append([i])
            bottom = boxes[i][3]
        else:
            strips[-1].append(i)
            bottom = max(bottom, boxes[i][3])
    return strips


def _cover(spans: Sequence[Span]) -> list[Span]:
    """The union of x intervals as disjoint sorted intervals."""
    merged: list[Span] = []
    for x0, x1 in sorted(spans):
        if merged and x0 <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], x1))
        else:
            merged.append((x0, x1))
    return merged


def _x_cover(ids: Sequence[int], boxes: Sequence[Box]) -> list[Span]:
    return _cover([(boxes[i][0], boxes[i][2]) for i in ids])


def _gaps(cover: list[Span], min_width: float) -> list[Span]:
    """Vertical gaps (x intervals no box covers) at least `min_width` wide."""
    return [(a[1], b[0]) for a, b in zip(cover, cover[1:], strict=False) if b[0] - a[1] >= min_width]


def _split_at(ids: Sequence[int], boxes: Sequence[Box], gaps: list[Span]) -> list[list[int]]:
    """Group boxes into the columns the gaps delimit, left to right."""
    columns: list[list[int]] = [[] for _ in range(len(gaps) + 1)]
    for i in ids:
        columns[bisect_right([g[1] for g in gaps], boxes[i][0])].append(i)
    return [c for c in columns if c]


def _order_strip(ids: list[int], boxes: Sequence[Box], depth: int) -> list[int]:
    """A strip has no full-width horizontal gap: cut it vertically, or read top-down."""
    gaps = _gaps(_x_cover(ids, boxes), _MIN_GAP)
    if not gaps:
        return _top_down(ids, boxes)
    return [i for piece in _split_at(ids, boxes, gaps) for i in _order(piece, boxes, depth + 1)]


def _sections(strips: list[list[int]], boxes: Sequence[Box]) -> list[list[list[int]]]:
    """Merge consecutive strips while they keep a common gutter (a shared column gap)."""
    sections: list[list[list[int]]] = [[strips[0]]]
    cover = _x_cover(strips[0], boxes)
    for strip in strips[1:]:
        candidate = _cover(cover + _x_cover(strip, boxes))
        if _gaps(candidate, _MIN_GUTTER):
            sections[-1].append(strip)
            cover = candidate
        else:
            sections.append([strip])
            cover = _x_cover(strip, boxes)
    return sections


def _order_section(section: list[list[int]], boxes: Sequence[Box], depth: int) -> list[int]:
    if len(section) > 1:
        members = [i for strip in section for i in strip]
        cover = _x_cover(members, boxes)
        if _are_text_columns(cover, _gaps(cover, _MIN_GUTTER)):
            columns = _split_at(members, boxes, _gaps(cover, _MIN_GUTTER))
            return [i for column in columns for i in _order(column, boxes, depth + 1)]
    return [i for strip in section for i in _order_strip(strip, boxes, depth)]


def _are_text_columns(cover: list[Span], gaps: list[Span]) -> bool:
    """Wide columns of similar width are text; narrow or unequal ones are a table's."""
    if not gaps:
        return False
    edges = [cover[0][0]] + [x for gap in gaps for x in gap] + [cover[-1][1]]
    widths = [edges[k + 1] - edges[k] for k in range(0, len(edges), 2)]
    total = cover[-1][1] - cover[0][0]
    return min(widths) >= _MIN_COLUMN_SHARE * total and min(widths) >= _MIN_COLUMN_RATIO * max(widths)
