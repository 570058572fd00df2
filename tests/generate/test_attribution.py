"""Citations traced after generation: which passages an uncited answer was drawn from."""

from __future__ import annotations

from ragsys.generate.attribution import attribution, cite_suffix

SALES = "Total net sales were $82,959 million for the quarter, up from $81,797 million a year ago."
WEATHER = "Weather in the quarter was mild across most regions, which helped store traffic."
COSTS = "Operating expenses rose to $12,809 million, driven by research and development."


def test_a_copied_passage_is_its_source() -> None:
    assert attribution(SALES, [WEATHER, SALES, COSTS]) == [2]
    assert cite_suffix(SALES, [WEATHER, SALES, COSTS]) == " [2]"


def test_an_answer_joining_two_passages_cites_both() -> None:
    assert attribution(f"{COSTS} {SALES}", [SALES, WEATHER, COSTS]) == [1, 3]


def test_a_stray_phrase_names_no_source() -> None:
    # half of the answer from one passage, a few words from another: only the first is a source
    answer = f"{SALES} Research and development was the main driver, with more engineers hired worldwide."
    assert attribution(answer, [SALES, COSTS]) == [1]


def test_shared_vocabulary_is_not_copying() -> None:
    answer = "The quarter's net sales and operating expenses were mild compared with the weather."
    assert attribution(answer, [SALES, WEATHER, COSTS]) == []
    assert cite_suffix(answer, [SALES, WEATHER, COSTS]) == ""


def test_too_short_or_no_passages() -> None:
    assert attribution("Net sales rose", [SALES]) == []  # one trigram: too short to trace
    assert attribution(SALES, []) == []


def test_repetition_of_a_passage_phrase_is_traced_to_it() -> None:
    # the tuned 10-Q model's uncited answers: a passage's phrase repeated to the token limit
    answer = "total net sales were $82,959 million, total net sales were $82,959 million, total net"
    assert attribution(answer, [WEATHER, SALES]) == [2]
