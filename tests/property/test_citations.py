"""Properties of citation parsing (`ragsys.generate.citations`) over any answer text and any
number of passages: every citation names a passage that was given, none twice, in order of
first mention, and `dropped` counts exactly the distinct numbers that named none."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ragsys.generate.citations import cited_numbers, parse_citations
from ragsys.types import Hit
from tests.fixtures.factories import make_hit

PROFILE = settings.get_profile("property")

NUMBER = (
    st.integers(0, 40).map(str)
    | st.integers(0, 10**30).map(str)
    | st.sampled_from(["007", "\u0663", "\uff13"])
)
SEP = st.sampled_from([",", ", ", "-", " - ", "\u2013", ",,", " "])


@st.composite
def groups(draw: st.DrawFn) -> str:
    """A bracket group such as "[1, 3-4]", or something bracket-shaped that is not one."""
    items = draw(st.lists(NUMBER, min_size=1, max_size=5))
    body = "".join(n + (draw(SEP) if i < len(items) - 1 else "") for i, n in enumerate(items))
    return draw(st.sampled_from(["[{}]", "[ {} ]", "[{}", "{}]", "[[{}]]", "({})"])).format(body)


ANSWER = st.lists(
    groups() | st.text(max_size=20) | st.text("[]0123456789-,\u2013 ", max_size=12), max_size=10
).map("".join)
PASSAGES = {n: make_hit(f"c{n}", f"passage {n}") for n in range(1, 31)}


@settings(PROFILE, max_examples=200)
@given(text=ANSWER, n_passages=st.integers(0, 30))
def test_no_citation_is_out_of_range_and_every_number_is_accounted_for(text: str, n_passages: int) -> None:
    passages: dict[int, Hit] = {n: PASSAGES[n] for n in range(1, n_passages + 1)}
    parsed = parse_citations(text, passages)
    numbers = [c.n for c in parsed.citations]
    assert all(1 <= n <= n_passages for n in numbers)
    assert all(c.chunk_id == passages[c.n].chunk.id for c in parsed.citations)
    distinct = list(dict.fromkeys(cited_numbers(text)))  # first-mention order
    assert numbers == [n for n in distinct if 1 <= n <= n_passages]
    assert parsed.dropped == sum(not 1 <= n <= n_passages for n in distinct)


@settings(PROFILE, max_examples=80)
@given(
    cites=st.lists(st.lists(st.integers(0, 99), min_size=1, max_size=4), max_size=6),
    filler=st.lists(st.text(st.characters(exclude_characters="[]", exclude_categories=("Nd",)), max_size=15)),
)
def test_every_written_number_is_read_in_order(cites: list[list[int]], filler: list[str]) -> None:
    """Lists without ranges, between text holding no brackets and no digits: an independent
    oracle for `cited_numbers` (the test above checks the resolution against it)."""
    gaps = [*filler, *[""] * (len(cites) + 1)]
    text = gaps[0] + "".join("[" + ", ".join(map(str, c)) + "]" + gaps[i + 1] for i, c in enumerate(cites))
    assert cited_numbers(text) == [n for c in cites for n in c]
