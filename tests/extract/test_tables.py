"""Table detection and Markdown rendering from cell grids and words."""

from __future__ import annotations

from ragsys.extract.tables import may_hold_table, table_markdown


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
