"""Citations by figure (ragsys.generate.citation_guard): a citation after a figure names a
passage that states it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.generate.citation_guard import CitationGuard, claim_before, stated_numbers, stating
from ragsys.generate.config import GeneratorConfig
from ragsys.generate.figure_guard import FigureGuard
from ragsys.generate.local import LocalGenerator
from ragsys.generate.watch import TextWatch
from ragsys.models import load_tokenizer
from tests.fixtures.factories import make_hit
from tests.fixtures.generators import generator_config
from tests.fixtures.scripted_decoders import ChoosingDecoder, ranked_generator

SALES = "Total net sales were 82,959 in the quarter ended June 25, 2022."
COSTS = "Operating expenses were 12,809, of which research and development 6,797."
WEATHER = "Weather in the quarter was mild across most regions."
PIECES = ["", "1", "2", "3", "1]", "2]", "0", " [", "]", ".", " [2"]
TOKEN = {p: i for i, p in enumerate(PIECES)}


def _guard(*passages: str) -> CitationGuard:
    return CitationGuard(list(passages), lambda t: PIECES[t])


def test_figures_are_numbers_that_name_a_fact_not_counts_years_or_citations() -> None:
    assert stated_numbers("Sales were $82,959 million [1] in 2022, up 3% over 12 months; EPS 1.26.") == [
        "82,959",
        "3",
        "1.26",
    ]
    assert stated_numbers("Q3 2023, Note 2, COVID-19, 10-Q") == []


def test_a_citation_covers_the_stretch_back_to_the_previous_one() -> None:
    assert claim_before("Sales were 82,959 [1]. Costs were 12,809 ") == ". Costs were 12,809 "
    assert (
        claim_before("Costs were 12,809 [2]") == "Costs were 12,809"
    )  # "[2][": a second number, same stretch
    assert claim_before("No citation yet, 5,210 ") == "No citation yet, 5,210 "


def test_the_passages_stating_the_most_of_the_figures_are_the_targets() -> None:
    passages = [frozenset(stated_numbers(p)) for p in (SALES, COSTS, WEATHER)]
    assert stating("Sales were $82,959 million", passages) == {1}
    assert stating("Costs of 12,809 and R&D of 6,797, sales 82,959", passages) == {2}  # two beats one
    assert stating("Sales grew a lot", passages) == frozenset()  # no figure: the model's choice
    assert stating("Sales were $99,999 million", passages) == frozenset()  # stated nowhere: free
    same = [frozenset({"82,959"}), frozenset({"82,959"})]
    assert stating("Sales were 82,959", same) == frozenset()  # every passage states it: no choice


def test_the_guard_masks_the_better_tokens_that_cite_another_passage() -> None:
    g = _guard(COSTS, SALES)
    text = "Net sales were $82,959 million ["
    assert not g.allows(text, TOKEN["1"]) and g.allows(text, TOKEN["2"]) and g.allows(text, TOKEN["2]"])
    assert not g.allows(text, TOKEN["1]"])
    assert not g.allows("Net sales were $82,959 million [2", TOKEN["0"])  # "[20]" names no target
    assert g.allows("Net sales were $82,959 million", TOKEN[" [2"])  # the "[" inside the piece
    assert not _guard(SALES, COSTS).allows("Net sales were $82,959 million", TOKEN[" [2"])
    assert g.blocked(text, [TOKEN["1"], TOKEN["2"], TOKEN["3"]], greedy=True) == [TOKEN["1"]]
    assert g.blocked(text, [TOKEN["1"], TOKEN["3"]], greedy=True) == []  # none allowed: unguarded
    assert g.blocked(text, [TOKEN["2"], TOKEN["1"], TOKEN["3"]], greedy=False) == [TOKEN["1"], TOKEN["3"]]


def test_what_the_guard_leaves_alone() -> None:
    g = _guard(COSTS, SALES)
    assert g.allows("Sales grew [", TOKEN["1"])  # no figure since the last citation
    assert g.allows("Net sales were $82,959 million [2] and grew [", TOKEN["1"])  # ... this stretch has none
    assert g.allows("Net sales were $82,959 million [2", TOKEN["]"])  # closing: no digit to check
    assert g.allows("Net sales were $82,959 million", TOKEN["."])
    assert g.allows("Net sales were $82,959 million [2][", TOKEN["2"])  # the same stretch, cited again


def test_the_repeat_ban_and_both_guards_mask_in_turn(tiny_lm_path: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_lm_path))
    figures = FigureGuard([SALES], lambda t: PIECES[t])
    watch = TextWatch(tokenizer, 0, (), guards=[figures, _guard(COSTS, SALES)])
    watch.text = "Net sales were $82,959 million ["
    assert watch.steers and watch.blocked([TOKEN["1"], TOKEN["2"]], greedy=True) == [TOKEN["1"]]
    assert not TextWatch(tokenizer, 0, ()).steers


@pytest.mark.parametrize("citations", ["free", "figures"])
def test_the_generator_cites_the_passage_stating_the_figure_the_model_ranks_second(
    tiny_lm_path: Path, citations: str
) -> None:
    tokenizer = load_tokenizer(str(tiny_lm_path))
    wrong, right = "Net sales were $82,959 million [1].", "Net sales were $82,959 million [2]."
    generator = ranked_generator(tokenizer, (wrong, right), max_new_tokens=40, citations=citations)
    hits = [make_hit("a", COSTS), make_hit("b", SALES)]
    answer = generator.generate("What were net sales?", hits)
    assert answer.text == (wrong if citations == "free" else right)
    assert [c.chunk_id for c in answer.citations] == (["a"] if citations == "free" else ["b"])


@pytest.mark.parametrize("citations", ["free", "figures"])
def test_the_scored_attribution_picks_among_the_passages_stating_each_sentences_figures(
    tiny_lm_path: Path, citations: str
) -> None:
    tokenizer = load_tokenizer(str(tiny_lm_path))
    reply = "The company reported revenue of $82,959 million, a strong result. Weather was kind to it."
    decoder = ChoosingDecoder(tokenizer, reply, favourite=1)
    config = generator_config(max_new_tokens=60, attribution="scored", citations=citations)
    hits = [make_hit("a", COSTS), make_hit("b", SALES)]
    answer = LocalGenerator(config, decoder, tokenizer).generate("What was revenue?", hits)
    # free: the model's favourite for both sentences; figures: the first sentence's figure is
    # passage 2's, the second sentence has none (the favourite again)
    assert answer.text == reply + (" [1]" if citations == "free" else " [1][2]")
    # the model is asked only where it has a choice: both sentences (free), the second (figures)
    assert len(decoder.asked) == (2 if citations == "free" else 1)


def test_citations_follow_the_figures_by_default() -> None:
    assert GeneratorConfig().citations == "figures"  # chosen on the 10-Q fold models' dev answers
