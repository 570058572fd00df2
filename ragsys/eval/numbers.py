"""`numeric_match`: does an answer state every figure of the reference, however it writes them?

A finance user asks one thing of an answer: are the numbers right? "$39,669 million", "$39.67
billion" and "39,669" read off a table "in millions" are the same figure; token overlap scores
them as different. This module reads figures out of text and compares them by value.

What counts as a figure: a number, with its sign, currency, percent sign and scale word. Not
figures: calendar years (four digits 1900-2099 with no currency, percent, scale, decimals or
thousands separator), numbers inside words or codes ("Q3", "10-Q", "COVID-19"), the parts of a
number hyphenated onto another ("IRS Notice 2023-55": an identifier, not a figure), day numbers
after a month name, citation markers ("[2]"), and list markers at a line's start ("1.", "2)").

How two figures match (`same_figure`):
* by value, within rounding at the precision either side states: "$40 billion" matches 39,669
  million (half of the last stated digit: 0.5 billion), "$39.67 billion" matches it too;
* a bare number against a scaled one by its digits, or scaled by a thousand, million or
  billion: a table's "39,669" under "(in millions)" is the reference's "$39,669 million";
* a percentage against a bare fraction ("62%" and "0.62"), never against a bare number of the
  same digits written elsewhere as a percentage of something else ("0.62%" is not 62%);
* signs by absolute value ("a net loss of $5 million" against "(5)"), unless both sides write a
  sign and the signs differ; currency symbols are not compared.

`numeric_match` is 1.0 when every reference figure is matched by some answer figure, 0.0 when
one is missing, and None when the reference states no figure (the question is not numeric).
An answer that dumps a table does not pass: more than `MAX_EXTRA` answer figures that match no
reference figure make it 0.0.

Example:
    >>> numeric_match("Revenue was $39.67 billion [1].", "$39,669 million")
    1.0
    >>> numeric_match("Revenue was $41.2 billion.", "$39,669 million")
    0.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EXTRA = 3  # answer figures beyond the reference's that still count as stating it
SCALES = {
    "thousand": 1e3, "thousands": 1e3, "k": 1e3,
    "million": 1e6, "millions": 1e6, "mn": 1e6, "mm": 1e6, "m": 1e6,
    "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "trillions": 1e12, "tn": 1e12, "t": 1e12,
}  # fmt: skip
ABBREVIATIONS = {"k", "mn", "mm", "m", "bn", "b", "tn", "t"}  # only after a currency figure ("$5m")
MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_FIGURE = re.compile(
    r"(?P<open>\(\s*)?"
    r"(?P<sign>(?<![\w.,-])[-\u2212\u2013])?"
    r"(?P<cur>(?:US)?[$\u20ac\u00a3\u00a5])?\s?"
    r"(?P<sign2>[-\u2212\u2013])?"
    r"(?<![\w.,])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<close>\s*\))?"
    r"(?:\s?(?P<pct>%|percent\b|per cent\b))?"
    r"(?:\s?(?P<scale>thousands?|millions?|billions?|trillions?|bn|mn|mm|tn|[kmbt])\b)?",
    re.IGNORECASE,
)
_CODE_BEFORE = re.compile(r"[A-Za-z]-?$")
_CODE_AFTER = re.compile(r"-?[A-Za-z]")
_HYPHENATED = re.compile(r"\d[-\u2013]\s?\$?$")  # a digit and a hyphen right before the number
_AFTER_MONTH = re.compile(rf"\b(?:{MONTHS})\.?\s*$", re.IGNORECASE)
_LIST_MARKER = re.compile(r"(?:^|\n)\s*$")


@dataclass(frozen=True)
class Figure:
    """One figure as written: `digits` is the number as stated, `scale` its scale word's factor,
    `decimals` the digits after the point (its stated precision)."""

    digits: float
    scale: float
    decimals: int
    percent: bool
    negative: bool | None  # None: no sign written (a loss may be said in words)
    text: str

    @property
    def value(self) -> float:
        return self.digits * self.scale

    @property
    def half_unit(self) -> float:
        """Half of the last stated digit, scaled: the rounding a stated figure allows."""
        return 0.5 * 10.0 ** (-self.decimals) * self.scale


def figures(text: str) -> list[Figure]:
    """The figures stated in `text`, in order (see the module docstring for what is left out)."""
    return [figure for figure, _ in figure_ends(text)]


def figure_ends(text: str) -> list[tuple[Figure, int]]:
    """`figures(text)`, each with the offset where it ends in `text`."""
    found: list[tuple[Figure, int]] = []
    for m in _FIGURE.finditer(text):
        figure = _figure(m, text)
        if figure is not None:
            found.append((figure, m.end()))
    return found


def _figure(m: re.Match[str], text: str) -> Figure | None:
    raw, start, end = m.group("num"), m.start("num"), m.end("num")
    before = text[max(0, start - 12) : start]
    in_code = _CODE_BEFORE.search(text[max(0, start - 2) : start]) or _CODE_AFTER.match(text[end : end + 2])
    if in_code and not (m.group("scale") or m.group("pct")):  # "Q3", "10-Q", "COVID-19" ("5m" is a figure)
        return None
    if text[start - 1 : start] == "[" and text[end : end + 1] == "]":
        return None  # a citation marker
    if _HYPHENATED.search(text[max(0, m.start() - 2) : start]) and not (m.group("pct") or m.group("scale")):
        return None  # "Notice 2023-55": part of an identifier
    cur, pct, scale_word = m.group("cur"), bool(m.group("pct")), (m.group("scale") or "").lower()
    if scale_word in ABBREVIATIONS and not cur:
        scale_word = ""  # "5 m" without a currency is metres or a letter, not millions
    decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
    plain = not (cur or pct or scale_word or decimals or "," in raw)
    if plain and len(raw) == 4 and 1900 <= int(raw) <= 2099:
        return None  # a calendar year
    if plain and _AFTER_MONTH.search(before):
        return None  # "June 25, 2022": a day
    if plain and _LIST_MARKER.search(text[: m.start()]) and text[end : end + 1] in (".", ")"):
        return None  # "1." or "2)" opening a line
    negative = bool(m.group("open") and m.group("close")) or bool(m.group("sign") or m.group("sign2"))
    return Figure(
        digits=float(raw.replace(",", "")),
        scale=SCALES.get(scale_word, 1.0),
        decimals=decimals,
        percent=pct,
        negative=True if negative else None,
        text=m.group(0).strip(),
    )


def same_figure(answer: Figure, reference: Figure) -> bool:
    """Whether the answer's figure states the reference's (see the module docstring)."""
    if (
        answer.negative is not None
        and reference.negative is not None
        and answer.negative != reference.negative
    ):
        return False
    if answer.percent != reference.percent:
        percent, other = (answer, reference) if answer.percent else (reference, answer)
        if other.scale != 1.0:
            return False
        tolerance = max(percent.half_unit / 100.0, other.half_unit)
        return abs(percent.digits / 100.0 - other.digits) <= tolerance + 1e-12
    tolerance = max(answer.half_unit, reference.half_unit)
    if abs(answer.value - reference.value) <= tolerance * (1 + 1e-9):
        return True
    return _same_in_table_units(answer, reference)


def _same_in_table_units(a: Figure, b: Figure) -> bool:
    """One side bare ("39,669" from a table in millions), the other scaled, or both bare. A bare
    number under 100 with no decimals ("5") is too common a word to be read in table units."""
    if a.percent or (a.scale != 1.0 and b.scale != 1.0):
        return False
    if a.scale == b.scale == 1.0:  # both bare: either one may be the figure in table units
        return _in_table_units(a, b) or _in_table_units(b, a)
    return _in_table_units(*((a, b) if a.scale == 1.0 else (b, a)))


def _in_table_units(bare: Figure, scaled: Figure) -> bool:
    """`bare` times the scaled side's factor (or a thousand, million, billion) is `scaled`."""
    if bare.digits < 100 and not bare.decimals:
        return False
    for factor in (scaled.scale, 1e3, 1e6, 1e9) if scaled.scale != 1.0 else (1e3, 1e6, 1e9):
        tolerance = max(bare.half_unit * factor, scaled.half_unit)
        if abs(bare.digits * factor - scaled.value) <= tolerance * (1 + 1e-9):
            return True
    return False


def numeric_match(answer: str, reference: str, max_extra: int = MAX_EXTRA) -> float | None:
    """1.0 when the answer states every figure of the reference (and at most `max_extra` others),
    0.0 when not, None when the reference states no figure."""
    wanted, stated = figures(reference), figures(answer)
    if not wanted:
        return None
    if not all(any(same_figure(s, w) for s in stated) for w in wanted):
        return 0.0
    extra = sum(not any(same_figure(s, w) for w in wanted) for s in stated)
    return 1.0 if extra <= max_extra else 0.0


def figure_f1(answer: str, reference: str) -> float | None:
    """Partial credit where `numeric_match` is all or nothing: F1 of the answer's figures against
    the reference's (recall: reference figures the answer states; precision: answer figures that
    state a reference figure); None when the reference states no figure.

    Why: a 10-Q reference lists four to ten figures from several filings, a 135M model's answer
    one or two of them; `numeric_match` was 0 for 55 of 56 test answers whichever model wrote
    them, so a keep rule judged on it could not tell a stage that states right figures from one
    that states none.

        >>> figure_f1("Sales were $5.2 billion [1].", "Sales: $5,210 million, then $4,980 million.")
        0.6666666666666666
    """
    wanted, stated = figures(reference), figures(answer)
    if not wanted:
        return None
    recall = sum(any(same_figure(s, w) for s in stated) for w in wanted) / len(wanted)
    precision = sum(any(same_figure(s, w) for w in wanted) for s in stated) / len(stated) if stated else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
