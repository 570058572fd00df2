"""SFT targets cut to what the prompt's passages support (ragsys.train.generator.targets)."""

from __future__ import annotations

from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.eval.numbers import numeric_match
from ragsys.train.generator.data import Templater, end_of_turn, sft_examples
from ragsys.train.generator.targets import (
    cite_revision,
    fit_target,
    ground_revision,
    sft_target,
    supported_answer,
)
from tests.fixtures.factories import make_hit
from tests.fixtures.train_generator import ABSTAIN, make_prompt

REFERENCE = (
    "Net sales changed as follows:\n\n"
    "- For the quarter ended June 25, 2022, net sales were $82,959 million. (SOURCE: 2022 Q3 AAPL.pdf)\n"
    "- For the quarter ended December 31, 2022, net sales were $117,154 million.\n"
    "- Services were $19,604 million and products $63,355 million.\n\n"
    "Sales rose, then fell."
)
PASSAGES = ["|Total net sales|82,959|", "|Services|19,604|", "Products 63,355 in the quarter"]


def test_figure_sentences_stay_only_when_the_passages_state_every_figure_and_cite_them() -> None:
    text, any_figure = supported_answer(REFERENCE, PASSAGES)
    assert any_figure
    assert text == (
        "Net sales changed as follows:\n\n"
        "- For the quarter ended June 25, 2022, net sales were $82,959 million."
        " (SOURCE: 2022 Q3 AAPL.pdf) [1]\n"
        "- Services were $19,604 million and products $63,355 million. [2][3]\n\n"
        "Sales rose, then fell."
    )
    assert "117,154" not in text  # no passage states it: the target never teaches it
    assert numeric_match(text, "$82,959 million and $63,355 million") == 1.0  # figures kept as written


def test_nothing_supported_leaves_no_figure_sentence() -> None:
    text, any_figure = supported_answer(REFERENCE, ["|Cash|1,234|"])
    assert not any_figure
    assert "82,959" not in text and text.startswith("Net sales changed as follows:")


def _prompt(lm: tuple[Any, Any], texts: list[str]) -> Any:
    hits = [make_hit(f"c{i}", t, doc_id="/data/2023 Q1 AAPL.pdf") for i, t in enumerate(texts, start=1)]
    return make_prompt(lm[1], hits)


def test_sft_target_cuts_a_figure_reference_to_the_prompt(lm: tuple[Any, Any]) -> None:
    item = EvalItem(id="x", question="q", split="train", gold_doc_ids=("*AAPL*",),
                    answer="Sales were $82,959 million. Cash was $1,234 million.")  # fmt: skip
    prompt = _prompt(lm, ["|Total net sales|82,959|", "|Other|5,555|"])
    assert sft_target(item, prompt, ABSTAIN) == "Sales were $82,959 million. [1]"
    whole = "Sales were $82,959 million. Cash was $1,234 million. [1][2]"  # every gold passage cited
    assert sft_target(item, prompt, ABSTAIN, targets="reference") == whole
    assert sft_target(item, _prompt(lm, ["|Other|5,555|"]), ABSTAIN) is None  # not one figure stated
    labelled = item.model_copy(update={"label": "yes"})
    assert sft_target(labelled, _prompt(lm, ["|Other|5,555|"]), ABSTAIN) == "Yes. [1]"  # the verdict stays


def test_a_reference_without_figures_is_taught_whole(lm: tuple[Any, Any]) -> None:
    item = EvalItem(id="x", question="q", split="train", answer="Floods ruined it.", gold_doc_ids=("*AAPL*",))
    assert sft_target(item, _prompt(lm, ["Spring floods."]), ABSTAIN) == "Floods ruined it. [1]"


def test_sft_examples_skip_questions_whose_figures_no_passage_states(lm: tuple[Any, Any]) -> None:
    model, tokenizer = lm
    templater = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, end_of_turn(tokenizer))
    items = [
        EvalItem(id="a", question="q1", split="train", answer="Sales were $82,959 million."),
        EvalItem(id="b", question="q2", split="train", answer="Cash was $1,234 million."),
    ]
    hits = [[make_hit("c1", "|Total net sales|82,959|", doc_id="/data/a.pdf")]] * 2
    examples, stats = sft_examples(templater, items, hits, ABSTAIN)
    assert len(examples) == 1 and stats["skipped_unsupported"] == 1 and stats["target_answer"] == 1
    examples, stats = sft_examples(templater, items, hits, ABSTAIN, targets="reference")
    assert len(examples) == 2 and "skipped_unsupported" not in stats


def _words(text: str) -> int:
    return len(text.split())


def test_a_target_is_cut_to_whole_sentences_that_fit_and_keeps_its_citation() -> None:
    figure_free = "Sales rose in spring. Costs fell later. Margins held. [1][2]"
    assert fit_target(figure_free, 99, _words) == figure_free  # fits: unchanged
    assert fit_target(figure_free, 6, _words) == "Sales rose in spring. [1][2]"  # citation moves up
    assert fit_target(figure_free, 9, _words) == "Sales rose in spring. Costs fell later. [1][2]"
    cited_inline = "Sales were $5 million. [1] Costs were $3 million. [2]"
    assert fit_target(cited_inline, 6, _words) == "Sales were $5 million. [1]"  # cites already: nothing added
    listed = "Net sales:\n- Q1 was $5 million. [1]\n- Q2 was $6 million. [2]"
    assert fit_target(listed, 8, _words) == "Net sales:\n- Q1 was $5 million. [1]"  # lines stay lines
    assert fit_target("A first sentence far too long. [1]", 3, _words) is None


def test_sft_examples_cut_targets_to_what_the_generator_may_write(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    long = "Floods came in spring. " + " ".join(["The valley lost its whole harvest that year."] * 6)
    items = [EvalItem(id="a", question="q", split="train", answer=long, gold_doc_ids=("*AAPL*",))]
    hits = [[make_hit("c1", "Spring floods.", doc_id="/data/2023 Q1 AAPL.pdf")]]
    prompt_fn = lambda q, h: make_prompt(tokenizer, h)  # noqa: E731
    whole, _ = sft_examples(Templater(prompt_fn, tokenizer, end_of_turn(tokenizer)), items, hits, ABSTAIN)
    budget = 20
    templater = Templater(prompt_fn, tokenizer, end_of_turn(tokenizer), max_new_tokens=budget)
    (cut,), stats = sft_examples(templater, items, hits, ABSTAIN)
    completion = cut.seqs[0].ids[cut.seqs[0].n_prompt :]
    assert stats["target_cut_to_fit"] == 1 and len(completion) <= budget < len(whole[0].seqs[0].ids)
    text = tokenizer.decode(completion)
    assert text.startswith("Floods came in spring.") and "[1]" in text  # whole sentences, still cited
    tiny = Templater(prompt_fn, tokenizer, end_of_turn(tokenizer), max_new_tokens=2)
    assert sft_examples(tiny, items, hits, ABSTAIN)[1]["skipped_too_long_target"] == 1


def test_a_users_revision_is_cited_by_the_passages_that_support_it() -> None:
    passages = ["|Total net sales|82,959|", "Apple sells iPhones and Macs in Europe and in Asia."]
    assert cite_revision("Sales were $82,959 million. Cash was $1 million.", passages) == (
        "Sales were $82,959 million. [1]"  # the unsupported figure sentence is dropped, as in SFT
    )
    assert cite_revision("Cash was $1,234 million.", passages) is None  # no passage states it
    assert cite_revision("Apple sells iPhones in Europe.", passages) == "Apple sells iPhones in Europe. [2]"
    assert cite_revision("Tariffs hurt margins.", passages) is None  # no passage says so
    assert cite_revision("Sales were $9 million [2].", passages) == "Sales were $9 million [2]."  # cited
    # every sentence taught is cited: prose the passages state is cited by them, the rest dropped
    # (a pair whose revision cites only its figure sentences taught CLAIR to stop citing)
    revision = "Apple sells iPhones in Europe.\n\n- Sales were $82,959 million.\n\nSo sales grew strongly."
    assert (
        cite_revision(revision, passages)
        == "Apple sells iPhones in Europe. [2]\n\n- Sales were $82,959 million. [1]"
    )
    own = "Sales were $82,959 million. [1] Tariffs hurt margins."  # an own mistake, cut by sft_target
    assert cite_revision(own, passages) == "Sales were $82,959 million. [1]"
    keep = lambda text: text  # noqa: E731
    assert ground_revision("I do not know.", passages, ABSTAIN, keep) == "I do not know."  # abstaining stays
    assert ground_revision("Sales were $82,959 million.", passages, ABSTAIN, lambda t: None) is None
