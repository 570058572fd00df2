"""End-to-end answer metrics: token overlap, ROUGE-L, figures, citations and closed-set labels.

`token_f1` and `exact_match` follow the SQuAD v1.1 evaluation script: lowercase,
drop punctuation and the articles a/an/the, collapse whitespace, then compare bags
of tokens. Macro-F1 is a few lines of numpy rather than scikit-learn, which is not a
declared dependency; tests check it against scikit-learn when that is installed.
`answer_metrics` gathers the per-question ones for one answer (`ragsys.eval.answering` runs
the generator over an eval set).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Literal, TypeVar

import numpy as np

from ragsys.eval.evalset import EvalItem, doc_matches
from ragsys.eval.evidence import cited_figure_support, figure_recall, unsupported_figures
from ragsys.eval.numbers import figure_f1, figures, numeric_match
from ragsys.types import Answer, Frozen

YesNoMaybe = Literal["yes", "no", "maybe"]
LABELS: tuple[YesNoMaybe, ...] = ("yes", "no", "maybe")
T = TypeVar("T")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")
_DECISION = re.compile(r"\b(yes|no|maybe)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(pred: str, ref: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(ref))


def token_f1(pred: str, ref: str) -> float:
    """Harmonic mean of token precision and recall; if either side is empty, 1 only when both are."""
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_l(pred: str, ref: str, use_stemmer: bool = True) -> float:
    """ROUGE-L F-measure from the `rouge_score` package (Lin 2004's LCS-based score).

    Its tokenizer keeps only [a-z0-9], so non-ASCII words are invisible to it.
    """
    from rouge_score import rouge_scorer  # imported here: it pulls in nltk (~1 s)

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    return float(scorer.score(ref, pred)["rougeL"].fmeasure)


class CitationScore(Frozen):
    """Document-level citation precision/recall, and page-level when pages were given."""

    precision: float
    recall: float
    page_precision: float | None = None
    page_recall: float | None = None


def citation_precision_recall(
    cited_doc_ids: Collection[str],
    gold_doc_ids: Collection[str],
    cited_pages: Collection[tuple[str, int]] | None = None,
    gold_pages: Collection[tuple[str, int]] | None = None,
) -> CitationScore:
    """Precision: share of distinct cited items that satisfy some gold; recall: share of golds satisfied.

    Gold ids may be globs or path suffixes (`doc_matches`). Conventions for empty sets:
    no gold means recall 1 (nothing to find); no citation means precision 0 unless
    there was also no gold (an answer that cites nothing has shown no evidence).
    """
    precision, recall = _precision_recall(set(cited_doc_ids), set(gold_doc_ids), doc_matches)
    if cited_pages is None or gold_pages is None:
        return CitationScore(precision=precision, recall=recall)
    page_p, page_r = _precision_recall(set(cited_pages), set(gold_pages), _page_matches)
    return CitationScore(precision=precision, recall=recall, page_precision=page_p, page_recall=page_r)


def _page_matches(gold: tuple[str, int], cited: tuple[str, int]) -> bool:
    return gold[1] == cited[1] and doc_matches(gold[0], cited[0])


def _precision_recall(cited: set[T], gold: set[T], match: Callable[[T, T], bool]) -> tuple[float, float]:
    if not gold:
        return (0.0 if cited else 1.0), 1.0
    if not cited:
        return 0.0, 0.0
    good = sum(any(match(g, c) for g in gold) for c in cited)
    found = sum(any(match(g, c) for c in cited) for g in gold)
    return good / len(cited), found / len(gold)


def map_yes_no_maybe(answer_text: str) -> YesNoMaybe:
    """A free-text answer as a PubMedQA label.

    Rule: lowercase; take the first sentence (up to ., ! or ? followed by a space, or a
    newline) after stripping leading space and markdown (`*`, `#`, `>`, `-`); return
    the first whole word in it that is "yes", "no" or "maybe"; else "maybe". Only the
    first sentence is read because models state the verdict first and then discuss
    ("Yes. ... no significant side effects"); "maybe" is the default because an
    answer that commits to nothing is, as a label, undecided.
    """
    return stated_decision(answer_text) or "maybe"


def stated_decision(answer_text: str) -> YesNoMaybe | None:
    """The verdict the answer's first sentence states (as `map_yes_no_maybe` reads it), or None."""
    text = answer_text.lower().lstrip(" \t\r\n*#>-_")
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    found = _DECISION.search(first)
    if found is None:
        return None
    word = found.group(1)
    return "yes" if word == "yes" else "no" if word == "no" else "maybe"


def label_accuracy_and_macro_f1(
    preds: Sequence[str], golds: Sequence[str], labels: Sequence[str] = ("yes", "no", "maybe")
) -> tuple[float, float]:
    """(accuracy, macro-F1 over `labels`); a label never predicted nor gold has F1 0, as in sklearn."""
    if len(preds) != len(golds) or not preds:
        raise ValueError(f"need equally long, non-empty preds and golds, got {len(preds)} and {len(golds)}")
    p, g = np.asarray(preds, dtype=object), np.asarray(golds, dtype=object)
    accuracy = float(np.mean(p == g))
    f1s = []
    for label in labels:
        tp = float(np.sum((p == label) & (g == label)))
        denom = float(np.sum(p == label) + np.sum(g == label))  # 2tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return accuracy, float(np.mean(f1s))


def answer_metrics(item: EvalItem, answer: Answer) -> dict[str, float]:
    """Per question: abstention, answers that neither cite nor abstain (`no_citation_rate`, as
    0/1), figures stated and the share of them no passage states (`unsupported_figure_rate`),
    and against a reference: token F1, exact match, ROUGE-L and, where the
    reference states a figure, `numeric_match`, its partial credit `figure_f1`
    (`ragsys.eval.numbers`) and its ceiling `numeric_reachable` (1 when the passages the
    generator was given state every figure of the reference: what a perfect reader could match)."""
    out: dict[str, float] = {
        "abstained": float(answer.abstained),
        "no_citation_rate": float(not answer.citations and not answer.abstained),
        "cited_after": float(answer.cited_after),  # its citations traced after generation
        "figures": float(len(figures(answer.text))),
        # grounded refusal: the abstention rate on each kind of question (target high / low)
        ("abstained_unanswerable" if not item.answerable else "abstained_answerable"): float(
            answer.abstained
        ),
    }
    if answer.contexts and not answer.abstained:
        given = [h.chunk.text for h in answer.contexts]  # passage [n] is given[n - 1]
        unsupported = unsupported_figures(answer.text, given)
        if unsupported is not None:
            out["unsupported_figure_rate"] = unsupported
        support = cited_figure_support(answer.text, given)
        if support is not None:
            out["cited_figure_support"] = support
    if not item.answerable:
        return out  # nothing in its passages to match, cite or overlap with
    if item.answer:
        out |= {
            "token_f1": token_f1(answer.text, item.answer),
            "exact_match": exact_match(answer.text, item.answer),
            "rouge_l": rouge_l(answer.text, item.answer),
        }
        numeric = numeric_match(answer.text, item.answer)
        if numeric is not None:  # scored only where the reference states a figure
            out["numeric_match"] = numeric
            out["figure_f1"] = figure_f1(answer.text, item.answer) or 0.0
            # the ceiling: whether the passages the generator was given state every figure at all
            given = [h.chunk.text for h in answer.contexts]
            out["numeric_reachable"] = float(bool(given) and figure_recall(item.answer, given) == 1.0)
    if item.gold_doc_ids:
        cites = citation_precision_recall([c.doc for c in answer.citations], item.gold_doc_ids)
        out |= {"citation_precision": cites.precision, "citation_recall": cites.recall}
    if item.gold_pages:  # page level: every page a citation spans against the gold pages
        cited = [(c.doc, n) for c in answer.citations for n in range(c.page_start, c.page_end + 1)]
        gold = [(g.doc, g.page) for g in item.gold_pages]
        pages = citation_precision_recall([d for d, _ in cited], [d for d, _ in gold], cited, gold)
        out |= {
            "citation_page_precision": pages.page_precision or 0.0,
            "citation_page_recall": pages.page_recall or 0.0,
        }
    return out
