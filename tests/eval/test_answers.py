from __future__ import annotations

import pytest

from ragsys.eval.answers import (
    CitationScore,
    citation_precision_recall,
    exact_match,
    label_accuracy_and_macro_f1,
    map_yes_no_maybe,
    normalize_answer,
    rouge_l,
    token_f1,
)


def test_squad_normalization() -> None:
    assert normalize_answer("The  Cat, sat on a mat!") == "cat sat on mat"


def test_exact_match_ignores_case_articles_and_punctuation() -> None:
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0


def test_token_f1_known_value() -> None:
    # pred tokens: cat sat mat (3); ref: cat was on mat (4); overlap cat, mat -> P 2/3, R 1/2
    assert token_f1("the cat sat mat", "a cat was on the mat") == pytest.approx(
        2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)
    )


def test_token_f1_counts_repeats_and_handles_empties() -> None:
    assert token_f1("yes yes", "yes") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("", "") == 1.0 and token_f1("the", "") == 1.0  # both normalise to nothing
    assert token_f1("x", "") == 0.0 and token_f1("x", "y") == 0.0


def test_rouge_l_known_values() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    # LCS of [the cat on the mat] vs [the cat sat on the mat today] is 5: P 5/5, R 5/7
    assert rouge_l("the cat on the mat", "the cat sat on the mat today") == pytest.approx(
        2 * 1 * (5 / 7) / (1 + 5 / 7)
    )
    assert rouge_l("", "anything") == 0.0


def test_citations_with_globs_and_pages() -> None:
    score = citation_precision_recall(
        cited_doc_ids=["docs/2023 Q3 AAPL.pdf", "docs/2023 Q3 MSFT.pdf"],
        gold_doc_ids=["*AAPL*", "*NVDA*"],
        cited_pages=[("docs/2023 Q3 AAPL.pdf", 4), ("docs/2023 Q3 AAPL.pdf", 5)],
        gold_pages=[("2023 Q3 AAPL.pdf", 4)],
    )
    assert score == CitationScore(precision=0.5, recall=0.5, page_precision=0.5, page_recall=1.0)


def test_citation_empty_set_conventions() -> None:
    assert citation_precision_recall([], []) == CitationScore(precision=1.0, recall=1.0)
    assert citation_precision_recall([], ["d1"]) == CitationScore(precision=0.0, recall=0.0)
    assert citation_precision_recall(["d1"], []) == CitationScore(precision=0.0, recall=1.0)
    assert citation_precision_recall(["d1", "d1"], ["d1"]).precision == 1.0  # distinct citations


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Yes, the drug reduced mortality.", "yes"),
        ("**No.** There was no effect.", "no"),
        ("Maybe; the evidence is mixed.", "maybe"),
        ("The answer is yes. But no trial was blinded.", "yes"),
        ("Based on the study, no. Yes, some signal.", "no"),
        ("The results are inconclusive. No firm answer.", "maybe"),  # verdict only read in sentence 1
        ("Knowledge is nonetheless limited", "maybe"),  # 'no' must be a whole word
        ("", "maybe"),
        ("  - YES\nno", "yes"),
    ],
)
def test_map_yes_no_maybe(text: str, label: str) -> None:
    assert map_yes_no_maybe(text) == label


def test_label_accuracy_and_macro_f1_known_values() -> None:
    preds = ["yes", "yes", "no", "maybe", "no"]
    golds = ["yes", "no", "no", "yes", "no"]
    acc, f1 = label_accuracy_and_macro_f1(preds, golds)
    # yes: tp1 fp1 fn1 -> 0.5; no: tp2 fp0 fn1 -> 0.8; maybe: tp0 fp1 fn0 -> 0
    assert acc == pytest.approx(0.6) and f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_macro_f1_agrees_with_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    preds = ["yes", "no", "maybe", "yes", "yes", "no", "no", "yes"]
    golds = ["yes", "yes", "maybe", "no", "yes", "no", "maybe", "yes"]
    _, f1 = label_accuracy_and_macro_f1(preds, golds)
    expected = metrics.f1_score(golds, preds, labels=["yes", "no", "maybe"], average="macro", zero_division=0)
    assert f1 == pytest.approx(expected)


def test_label_metrics_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="equally long"):
        label_accuracy_and_macro_f1(["yes"], [])


def test_answer_metrics_score_figures_and_uncited_answers() -> None:
    from ragsys.eval.answers import answer_metrics
    from ragsys.eval.evalset import EvalItem
    from ragsys.types import Answer, Citation
    from tests.fixtures.factories import make_hit

    item = EvalItem(
        id="q",
        question="Revenue?",
        answer="Revenue was $39,669 million.",
        gold_doc_ids=("a.pdf",),
        split="test",
    )
    cited = Citation(n=1, chunk_id="c", doc="a.pdf", page_start=3, page_end=3, text="...")
    right = answer_metrics(
        item, Answer(question="Revenue?", text="$39.67 billion [1].", abstained=False, citations=(cited,))
    )
    assert (right["numeric_match"], right["no_citation_rate"], right["figures"]) == (1.0, 0.0, 1.0)
    wrong = answer_metrics(item, Answer(question="Revenue?", text="It was $18.2 million.", abstained=False))
    assert (wrong["numeric_match"], wrong["no_citation_rate"], wrong["figure_f1"]) == (0.0, 1.0, 0.0)
    assert right["figure_f1"] == 1.0 and right["numeric_reachable"] == 0.0  # no passages given
    given = (make_hit("c", "|Revenue|39,669|"),)
    read = answer_metrics(item, Answer(question="Revenue?", text="Up.", abstained=False, contexts=given))
    assert (read["numeric_match"], read["numeric_reachable"]) == (0.0, 1.0)  # there to read, missed
    refused = answer_metrics(item, Answer(question="Revenue?", text="I cannot answer.", abstained=True))
    assert refused["no_citation_rate"] == 0.0  # abstaining is not an uncited claim
    wordy = item.model_copy(update={"answer": "It grew because of services."})
    assert "numeric_match" not in answer_metrics(
        wordy, Answer(question="q", text="It grew.", abstained=False)
    )


def test_page_level_citations_are_scored_when_gold_pages_exist() -> None:
    from ragsys.eval.answers import answer_metrics
    from ragsys.eval.evalset import EvalItem, GoldPage
    from ragsys.types import Answer, Citation

    item = EvalItem(
        id="q",
        question="q",
        split="test",
        gold_doc_ids=("a.pdf",),
        gold_pages=(GoldPage(doc="a.pdf", page=4),),
    )
    right = Citation(n=1, chunk_id="c", doc="/x/a.pdf", page_start=3, page_end=4, text="")
    out = answer_metrics(item, Answer(question="q", text="[1]", abstained=False, citations=(right,)))
    assert (out["citation_page_precision"], out["citation_page_recall"]) == (0.5, 1.0)  # pages 3 and 4 cited
    assert out["citation_precision"] == 1.0


def test_answer_metrics_count_figures_no_passage_states() -> None:
    from ragsys.eval.answers import answer_metrics
    from ragsys.eval.evalset import EvalItem
    from ragsys.types import Answer
    from tests.fixtures.factories import make_hit

    item = EvalItem(id="q", question="Revenue?", answer="Revenue was $39,669 million.", split="test")
    hits = (make_hit("c", "|Total net sales|39,669|"),)

    def rate(text: str, contexts: tuple = hits) -> float | None:  # type: ignore[type-arg]
        answer = Answer(question="Revenue?", text=text, abstained=False, contexts=contexts)
        return answer_metrics(item, answer).get("unsupported_figure_rate")

    assert rate("$39,669 million [1].") == 0.0  # read by value: the table's "39,669" in millions
    assert rate("$39,669 million, up 12.5% [1].") == 0.5  # no passage states 12.5%
    assert rate("It rose in 3 months [1].") is None  # no distinctive figure stated
    assert rate("$18.2 million.", contexts=()) is None  # no passages: nothing to hold it to


def test_answer_metrics_check_that_a_cited_figure_is_its_citations_passages() -> None:
    from ragsys.eval.answers import answer_metrics
    from ragsys.eval.evalset import EvalItem
    from ragsys.types import Answer
    from tests.fixtures.factories import make_hit

    item = EvalItem(id="q", question="Revenue?", answer="Revenue was $39,669 million.", split="test")
    hits = (make_hit("a", "Weather was mild."), make_hit("b", "|Total net sales|39,669|"))

    def support(text: str) -> float | None:
        answer = Answer(question="Revenue?", text=text, abstained=False, contexts=hits)
        return answer_metrics(item, answer).get("cited_figure_support")

    assert support("Revenue was $39,669 million [2].") == 1.0
    assert support("Revenue was $39,669 million [1].") == 0.0  # the right filing, not the passage
    assert support("Revenue was $39,669 million. It rose. [1][2]") == 1.0  # the next group cites it
    assert support("Revenue was $39,669 million.") is None  # no citation follows: uncited, not wrong
    assert support("Revenue was $41,000 million [1].") is None  # stated nowhere: unsupported, not this
    assert support("[2] Revenue was $39,669 million [1], as [2] says.") == 0.0  # only the next group


def test_cited_figure_support_pairs_each_figure_with_the_next_citation() -> None:
    from ragsys.eval.evidence import cited_figure_support

    passages = ["|Net sales|82,959|", "|Net income|19,442|"]
    assert cited_figure_support("Sales $82,959 million [1], income $19,442 million [2].", passages) == 1.0
    assert cited_figure_support("Sales $82,959 million and income $19,442 million [2].", passages) == 0.5
    assert cited_figure_support("It rose 3 points [1].", passages) is None  # no distinctive figure
