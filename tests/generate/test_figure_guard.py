"""Copied figures (ragsys.generate.figure_guard): the answer's numbers are the passages'."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.eval.numbers import figures
from ragsys.generate.figure_guard import FigureGuard
from ragsys.models import load_tokenizer
from tests.fixtures.factories import make_hit
from tests.fixtures.scripted_decoders import ranked_generator

PIECES = [
    "",
    "82",
    ",9",
    "59",
    "98",
    ",7",
    "65",
    " million",
    ".",
    " [",
    "1",
    "]",
    "3",
    " months",
    ",",
    "%",
    " percent",
]
TOKEN = {p: i for i, p in enumerate(PIECES)}


def _guard(*sources: str) -> FigureGuard:
    return FigureGuard(list(sources), lambda t: PIECES[t])


def test_a_number_is_allowed_only_while_it_is_the_start_of_a_stated_one() -> None:
    g = _guard("|Total net sales|82,959|")
    assert g.allows("Sales were $", TOKEN["82"]) and g.allows("Sales were $82", TOKEN[",9"])
    assert g.allows("Sales were $82,9", TOKEN["59"]) and g.allows("Sales were $82,959", TOKEN[" million"])
    assert not g.allows("Sales were $", TOKEN["98"])  # no stated number starts so
    assert not g.allows("Sales were $82", TOKEN[",7"])  # "82,7" starts none
    assert not g.allows("Sales were $82,9", TOKEN[" million"])  # "82,9" is not a whole stated number
    assert g.allows("Sales were $82,959", TOKEN["."]) and g.allows("Sales were $82,959.", TOKEN[" ["])


def test_citations_small_numbers_and_words_pass() -> None:
    g = _guard("It took 3 years and cost 82,959.")
    assert g.allows("Sales rose", TOKEN[" million"])  # no number anywhere: nothing to check
    assert g.allows("Sales rose [", TOKEN["1"]) and g.allows("Sales rose [1", TOKEN["]"])  # a citation
    assert g.allows("In", TOKEN["3"]) and g.allows("In 3", TOKEN[" months"])  # "3" starts "3" (stated)
    assert not g.allows("In", TOKEN["65"])  # a small number must still start a stated one...
    assert _guard("65 days").allows("In 65", TOKEN[","])  # ...and may end a clause once written
    sales = _guard("Total net sales 82,959 and 30 stores")
    assert sales.allows("In 3", TOKEN[" months"])  # a small number that is no figure passes
    assert not sales.allows("Up 3", TOKEN["%"]) and not sales.allows("Up 3", TOKEN[" percent"])  # "3%" is one
    assert _guard("up 3%").allows("Up 3", TOKEN["%"])
    assert _guard("the question asks about 98,765").allows("In $", TOKEN["98"])  # the question is a source


def test_blocked_masks_the_better_tokens_that_invent_a_figure() -> None:
    g = _guard("|Total net sales|82,959|")
    ranked = [TOKEN["98"], TOKEN["82"], TOKEN[" million"]]
    assert g.blocked("Sales were $", ranked, greedy=True) == [TOKEN["98"]]  # the argmax becomes "82"
    assert g.blocked("Sales were $", [TOKEN["82"], TOKEN["98"]], greedy=True) == []  # already fine
    assert g.blocked("Sales were $", [TOKEN["82"], TOKEN["98"]], greedy=False) == [TOKEN["98"]]  # all masked
    assert g.blocked("Sales were $", [TOKEN["98"], TOKEN["65"]], greedy=True) == []  # none allowed: unguarded


@pytest.mark.parametrize("figures_mode", ["free", "copied"])
def test_the_generator_copies_the_stated_figure_the_model_ranks_second(
    tiny_lm_path: Path, figures_mode: str
) -> None:
    tokenizer = load_tokenizer(str(tiny_lm_path))
    invented, stated = "Sales were $98,765 million [1].", "Sales were $82,959 million [1]."
    generator = ranked_generator(tokenizer, (invented, stated), max_new_tokens=40, figures=figures_mode)
    hits = [make_hit("a", "Total net sales 82,959 in the quarter")]
    answer = generator.generate("What were net sales?", hits)
    assert answer.text == (invented if figures_mode == "free" else stated)
    if figures_mode == "copied":
        assert [f.value for f in figures(answer.text)] == [82_959e6]


def test_on_transformers_the_guard_masks_the_scores_generate_picks_from(tiny_lm_path: Path) -> None:
    import torch

    from ragsys.generate.hf import Guarded
    from ragsys.generate.watch import TextWatch

    tokenizer = load_tokenizer(str(tiny_lm_path))
    watch = TextWatch(tokenizer, 0, (), guards=[_guard("|Total net sales|82,959|")])
    watch.text = "Sales were $"
    scores = torch.zeros((1, len(PIECES)))
    scores[0, TOKEN["98"]], scores[0, TOKEN["82"]] = 5.0, 4.0
    masked = Guarded(watch, greedy=True)(None, scores)
    assert int(masked[0].argmax()) == TOKEN["82"] and float(masked[0, TOKEN["98"]]) == float("-inf")
    assert float(scores[0, TOKEN["98"]]) == 5.0  # the caller's tensor is left as it was
