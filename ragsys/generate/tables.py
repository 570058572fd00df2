"""Markdown tables in a passage rewritten one row per line, each value next to its column header.

A 135M model reading `|Warehouse automation|29.6|22.1|+34%|` must count pipes back to the
header row to know which number is which quarter; it does not, and states the total or a
figure from the prose instead. Row-wise linearization, as table-to-text readers do, puts
each value beside its label and column header:

    |Segment|Q3 2025 revenue ($M)|Q3 2024 revenue ($M)|
    |---|---|---|
    |Warehouse automation|29.6|22.1|

becomes

    Warehouse automation: Q3 2025 revenue ($M) 29.6; Q3 2024 revenue ($M) 22.1.

Tables extracted from filings are messier: a lone `$` in its own cell, an empty header row
with the real column headers (`(In Millions)||Apr 1, 2023||Apr 2, 2022`) in the first body
row, section rows with no values (`Current assets:`). The rules, in order:

- cells that are empty or only a currency sign or `%`/`)` are dropped;
- a row whose cells after the first hold no figure (a number, not a bare year) is a header
  row: its cells after the first become the column headers of the rows below, and its first
  cell (often the unit, "(In Millions)") is kept on a line of its own;
- a row with no cell after the first is a section label ("Current assets:"), kept as it is;
- a body row pairs its values with the current headers when their counts agree, else lists
  its values after the label (pairing by position would then mislabel them).

Text outside tables is returned unchanged; so is a table this cannot parse.

Example:
    >>> print(linearize_tables("|Segment|Q3 2025|\\n|---|---|\\n|Robots|29.6|"))
    Segment
    Robots: Q3 2025 29.6.
"""

from __future__ import annotations

import re
from typing import Literal

TableFormat = Literal["markdown", "rows"]  # how passages' tables reach the model

_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# A cell that is a number: sign or parentheses, currency, separators, decimals, percent, a
# scale letter. A bare year ("2023") is a column header, not a figure.
_FIGURE = re.compile(r"^[(\-−–+]?\s*[$€£]?\s*\d[\d,]*(\.\d+)?\s*[)%]?\s*[kmb]?$", re.IGNORECASE)
_YEAR = re.compile(r"^(19|20)\d\d$")
_NOISE = {"$", "€", "£", "%", ")", "(", "-", "—", "–"}


def linearize_tables(text: str) -> str:
    """Every markdown table in `text` rewritten one row per line (see the module docstring)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _is_row(lines[i]) and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and _is_row(lines[end]):
                end += 1
            out.extend(_table_lines([lines[i], *lines[i + 2 : end]]))
            i = end
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def _is_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1


def _cells(row: str) -> list[str]:
    """The row's cells without the empty and currency-only ones; the first (label) cell kept even if empty."""
    raw = [c.strip().replace("<br>", " ") for c in row.strip().strip("|").split("|")]
    if not raw:
        return [""]
    return [raw[0], *(c for c in raw[1:] if c and c not in _NOISE)]


def _table_lines(rows: list[str]) -> list[str]:
    out: list[str] = []
    headers: list[str] = []
    for row in rows:
        label, *values = _cells(row)
        if not values:
            if label:
                out.append(label)  # a section row ("Current assets:") or a one-column table's cell
            continue
        if not any(_is_figure(v) for v in values):
            headers = values
            if label:
                out.append(label)
            continue
        out.append(_body_line(label, values, headers))
    return out


def _is_figure(cell: str) -> bool:
    return bool(_FIGURE.match(cell)) and not _YEAR.match(cell)


def _body_line(label: str, values: list[str], headers: list[str]) -> str:
    if len(headers) == len(values):
        pairs = "; ".join(f"{h} {v}" for h, v in zip(headers, values, strict=True))
    else:
        pairs = "; ".join(values)
    return f"{label}: {pairs}." if label else f"{pairs}."
