"""Citation parsing and abstention detection: pure functions over answer text."""

from __future__ import annotations

import pytest

from ragsys.generate.citations import (
    CITATION_CHARS,
    MAX_RANGE,
    cited_numbers,
    is_abstention,
    normalize,
    parse_citations,
    shorten,
)
from ragsys.types import Hit
from tests.fixtures.factories import make_hit

ABSTAIN = "I cannot answer this from the documents."


def _hit(cid: str, text: str = "Some passage text.", pages: tuple[int, int] = (1, 1)) -> Hit:
    return make_hit(
        cid,
        text,
        doc_id=f"docs/{cid}.pdf",
        chunk_source=f"/data/docs/{cid}.pdf",
        page_start=pages[0],
        page_end=pages[1],
    )


PASSAGES = {1: _hit("a", pages=(2, 3)), 2: _hit("b"), 3: _hit("c")}


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Revenue grew [1].", [1]),
        ("Both say so [1, 3].", [1, 3]),
        ("See [2-4] and [5–6].", [2, 3, 4, 5, 6]),  # hyphen and en dash
        ("Adjacent [1][2] forms.", [1, 2]),
        ("Mixed [ 1 , 3 - 4 ].", [1, 3, 4]),
        ("Repeats [2] then [2] again [1].", [2, 2, 1]),
        ("No citation here.", []),
        ("Not citations: [truncated] [a] [1a] [].", []),
        ("Reversed [4-2] and absurd [1-999].", [4, 2, 1, 999]),
    ],
)
def test_cited_numbers_understands_every_form(text: str, numbers: list[int]) -> None:
    assert cited_numbers(text) == numbers


def test_a_range_up_to_the_limit_is_expanded() -> None:
    assert cited_numbers(f"[1-{MAX_RANGE}]") == list(range(1, MAX_RANGE + 1))
    assert cited_numbers(f"[1-{MAX_RANGE + 1}]") == [1, MAX_RANGE + 1]


def test_valid_citations_resolve_to_their_passages() -> None:
    parsed = parse_citations("Revenue grew [1]. Costs fell [3].", PASSAGES)
    assert [c.n for c in parsed.citations] == [1, 3]
    first = parsed.citations[0]
    assert (first.chunk_id, first.doc, first.page_start, first.page_end) == ("a", "docs/a.pdf", 2, 3)
    assert first.text == "Some passage text."
    assert parsed.dropped == 0


def test_out_of_range_numbers_are_dropped_and_counted_once_each() -> None:
    parsed = parse_citations("Claims [1][7]. More [0] and [7] again, [2].", PASSAGES)
    assert [c.n for c in parsed.citations] == [1, 2]
    assert parsed.dropped == 2  # 7 (twice) and 0


def test_no_citations_gives_an_empty_result() -> None:
    parsed = parse_citations("An answer without sources.", PASSAGES)
    assert parsed.citations == () and parsed.dropped == 0


def test_duplicates_keep_first_mention_order() -> None:
    parsed = parse_citations("A [3]. B [1, 3]. C [3][1]. D [2-3].", PASSAGES)
    assert [c.n for c in parsed.citations] == [3, 1, 2]


def test_ranges_resolve_and_overhang_is_dropped() -> None:
    parsed = parse_citations("All of them [1-5].", PASSAGES)
    assert [c.n for c in parsed.citations] == [1, 2, 3]
    assert parsed.dropped == 2


def test_citation_text_is_the_passage_start_shortened() -> None:
    long = " ".join(f"word{i}" for i in range(200))
    parsed = parse_citations("[1]", {1: _hit("x", long)})
    text = parsed.citations[0].text
    assert text.endswith("…") and len(text) <= CITATION_CHARS + 1
    assert long.startswith(text[:-1])


def test_shorten_keeps_short_text_and_cuts_at_a_space() -> None:
    assert shorten("short  text\n", 300) == "short text"
    assert shorten("alpha beta gamma delta", 12) == "alpha beta…"


@pytest.mark.parametrize(
    "answer",
    [
        ABSTAIN,
        "i cannot answer this from the documents",
        "  I CANNOT answer this from the documents!  ",
        '"I cannot answer this from the documents."',
        "I cannot answer this from the documents. The passages only discuss bridges [2].",
        "",
        "   ",
    ],
)
def test_abstention_is_detected(answer: str) -> None:
    assert is_abstention(answer, ABSTAIN)


@pytest.mark.parametrize(
    "answer",
    [
        "The river is 212 km long [1].",
        "The river is 212 km long [1]. I cannot answer this from the documents.",
        "I cannot answer this fully, but the river is 212 km long [1].",
        "I cannot",
    ],
)
def test_answers_are_not_abstentions(answer: str) -> None:
    assert not is_abstention(answer, ABSTAIN)


def test_abstention_ignores_apostrophe_and_quote_styles() -> None:
    assert is_abstention("I can’t tell from these documents.", "I can't tell from these documents.")
    assert normalize("Don’t — STOP.") == "dont stop"
