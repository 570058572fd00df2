"""Reading order of text boxes: columns one after the other, tables row by row."""

from __future__ import annotations

from ragsys.extract.order import reading_order


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
