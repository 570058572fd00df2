"""`numeric_match` on tricky pairs from filings and papers: scales, table units, negatives in
parentheses, percentages and fractions, rounding at the stated precision, years and list numbers."""

from __future__ import annotations

import pytest

from ragsys.eval.numbers import figures, numeric_match

# (answer, reference, expected)
PAIRS: list[tuple[str, str, float | None]] = [
    # scales and thousands separators
    ("Revenue was $39.67 billion [1].", "The total revenue was $39,669 million.", 1.0),
    ("iPhone revenue was $39,669 million.", "$39.67 billion", 1.0),
    ("It reported 39,669 (in millions) [2].", "$39,669 million", 1.0),
    ("Net sales were $81.8B.", "Total net sales were $81,797 million.", 1.0),
    ("Net sales were $81.8 billion.", "Total net sales were $81,797 million.", 1.0),
    ("Net sales were $82 billion.", "Total net sales were $81,797 million.", 1.0),
    ("Net sales were $81.7 billion.", "Total net sales were $81,797 million.", 0.0),
    ("Net sales were $81,797.", "Total net sales were $81,797 million.", 1.0),
    ("Cash was $24,977 thousand.", "$24.977 million", 1.0),
    ("Revenue was $1.2 trillion.", "$1,200 billion", 1.0),
    ("Revenue was $5m.", "$5,000,000", 1.0),
    ("Revenue was $41.2 billion.", "$39,669 million", 0.0),
    ("It has 5 m of cable.", "$5 million", 0.0),
    # negatives
    ("Operating loss was $(1,234) million.", "Operating income was (1,234) million.", 1.0),
    ("The net loss was $5 million.", "Net income (loss): (5) million", 1.0),
    ("Net income was -5 million.", "Net income was (5) million", 1.0),
    ("Net income was -5 million.", "Net income was -5 million", 1.0),
    ("Net income grew to $5 million.", "Net income was $5 million", 1.0),
    # percentages and fractions
    ("The effective tax rate was 0.62% [1].", "The effective tax rate was 0.62%.", 1.0),
    ("The effective tax rate was 26.1% [1].", "The effective tax rate was 0.62%.", 0.0),
    ("The margin was 62%.", "The margin was 0.62 of revenue.", 1.0),
    ("The margin was 0.62.", "The gross margin was 62%.", 1.0),
    ("The margin was 62 percent.", "The gross margin was 62%.", 1.0),
    ("Growth was 0.62%.", "Growth was 62%.", 0.0),
    ("Gross margin was 43.3%.", "Gross margin was 43.26%.", 1.0),
    ("Gross margin was 43%.", "Gross margin was 43.26%.", 1.0),
    ("Gross margin was 44%.", "Gross margin was 43.26%.", 0.0),
    # years, dates, quarters, codes, citations and list markers are not figures
    ("In fiscal 2023 revenue rose [2].", "Revenue rose in 2023.", None),
    ("As of June 25, 2022, cash was $24,977 million.", "$24,977 million", 1.0),
    ("In Q3 2022 the 10-Q shows $98,024 million [1][2].", "$98,024 million for the nine months", 1.0),
    ("1. Revenue was $5 million.\n2. Costs were $3 million.", "Revenue was $5 million.", 1.0),
    ("Revenue rose in Q3.", "Revenue was $5 million.", 0.0),
    # several figures, all needed; a table dump does not pass
    ("Revenue was $5 million and costs $3 million.", "Revenue $5 million, costs $3 million.", 1.0),
    ("Revenue was $5 million.", "Revenue $5 million, costs $3 million.", 0.0),
    ("5, 3, 7, 9, 11 million and $5 million", "$5 million", 0.0),
    ("$5 million, up from $4 million, 25% growth", "$5 million", 1.0),
]


@pytest.mark.parametrize(("answer", "reference", "expected"), PAIRS)
def test_numeric_match_on_tricky_pairs(answer: str, reference: str, expected: float | None) -> None:
    assert numeric_match(answer, reference) == expected


def test_there_are_at_least_thirty_pairs() -> None:
    assert len(PAIRS) >= 30


def test_figures_reads_what_is_written() -> None:
    [f] = figures("a loss of $(1,234.5) million")
    assert (f.digits, f.scale, f.decimals, f.negative, f.percent) == (1234.5, 1e6, 1, True, False)
    assert figures("In 2023 (see [3]) the 10-Q for Q3, on May 4, 2023:") == []
    assert figures("under IRS Notice 2023-55, effective") == []  # an identifier's parts
    assert [f.digits for f in figures("a range of 5-10% and a loss of -5 million")] == [5, 10, 5]
    [p] = figures("margin of 43.26 percent")
    assert p.percent and p.digits == 43.26 and p.decimals == 2


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("Sales were $82,959 million [1].", "$82,959 million, then $81,797 million.", 2 / 3),  # half, exact
        ("$82,959 million and $81,797 million.", "$82,959 million, then $81,797 million.", 1.0),
        ("$82,959 million, $1 million, $2 million.", "$82,959 million.", 0.5),  # one of three right
        ("Sales rose [1].", "$82,959 million.", 0.0),  # no figure stated
        ("$5 million.", "Sales rose.", None),  # not a numeric question
    ],
)
def test_figure_f1_gives_partial_credit(answer: str, reference: str, expected: float | None) -> None:
    from ragsys.eval.numbers import figure_f1

    got = figure_f1(answer, reference)
    assert got is None if expected is None else got == pytest.approx(expected)
    if expected == 1.0:
        assert numeric_match(answer, reference) == 1.0  # full credit only where numeric_match agrees
