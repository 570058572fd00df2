"""The answer the generator is taught to write for a question, given exactly its prompt.

`sft_target` is what SFT imitates and what a wrong own answer is revised to (KTO's and CLAIR's
data from the model's own mistakes). An eval set's reference answer was written from whole
documents, not from the three passages the generator is shown: a 10-Q reference lists four
quarters' net sales from four filings, and the prompt holds one or two of them. Taught the whole
reference, a 135M model learns to write figures its passages do not state -- the failure a
finance user cannot forgive. So by default (`targets="supported"`) the reference is cut to what
the prompt supports (`supported_answer`):

* each sentence of the reference that states figures is kept only when every figure is stated by
  some passage (read by value, as `numeric_match` reads them: "$98,024 million" is a table's
  "98,024"), and it is followed by `[n]` for the passages stating them -- the citation that a
  reader can check;
* sentences that state no figure are kept as written;
* when no figure sentence is left (the reference states figures, the prompt states none of its
  sentences' figures), there is no target: SFT skips the question rather than teach the model to
  make the figures up, or to answer a figure question with the reference's framing alone.

References that state no figure (PubMedQA's conclusions) are unchanged: the reference with `[n]`
for every passage from a gold document. `targets="reference"` is the whole reference always.

A target must also fit what the generator may write (`fit_target`): cut to its first whole
sentences within `max_new_tokens`, keeping its citation, so no example teaches an answer the
limit would cut before its closing `[n]` (24 of 65 10-Q targets were longer than 192 tokens).
Measured, this did not lower `no_citation_rate` on the 10-Q test (0.154 before, 0.167 after):
the uncited answers were passage copies run to the limit, not cut targets. A user's revision
from the feedback store is cited the same way (`cite_revision`): an expert corrects the
answer's words, not its `[n]` markers.

Example:
    >>> supported_answer("Sales were $5,210 million. Costs were $3,120 million.", ["|Net sales|5,210|"])
    ('Sales were $5,210 million. [1]', True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from ragsys.eval.answers import normalize_answer
from ragsys.eval.evalset import EvalItem, doc_matches
from ragsys.eval.evidence import stated
from ragsys.eval.numbers import Figure, figures
from ragsys.generate.config import DEFAULT_ABSTAIN
from ragsys.generate.prompt import Prompt

Targets = Literal["supported", "reference"]
# a sentence ends at . ! or ? before a capital letter or a list marker; "(SOURCE: ...)" after a
# period stays with the sentence it sources
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\-*\u2022])")
_CITED_SENTENCE_END = re.compile(r"(?<=[.!?\]])\s+(?=[A-Z\-*\u2022])")  # also after a sentence's closing [n]
# a target's pieces: sentences (a citation after the period stays with its sentence) and lines
_PIECE_END = re.compile(r"((?<=[.!?\]])[ \t]+(?=[A-Z\-*\u2022])|[ \t]*\n\s*)")
_CLOSING_CITES = re.compile(r"(?:\s*\[\d+\])+\s*$")
_CITE = re.compile(r"\[\d+\]")
OVERLAP = 0.5  # share of a figure-free revision's words a passage must state to be cited for it


def gold_passages(item: EvalItem, prompt: Prompt) -> list[int]:
    """Numbers of the prompt's passages that come from one of the item's gold documents."""
    return [
        p.n for p in prompt.passages if any(doc_matches(g, p.hit.chunk.doc_id) for g in item.gold_doc_ids)
    ]


def supported_answer(reference: str, passages: Sequence[str]) -> tuple[str, bool]:
    """`reference` cut to the sentences whose figures the passages state, each figure sentence
    cited by the numbers (from 1) of the passages that state its figures; and whether any figure
    sentence is left. Empty text when nothing is left."""
    lines: list[str] = []
    any_figure = False
    for line in reference.strip().splitlines():
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(line.strip()):
            wanted = figures(sentence)
            if not wanted:
                kept.append(sentence)
                continue
            sources = _sources(wanted, passages)
            if sources is not None:
                kept.append(f"{sentence} {''.join(f'[{n}]' for n in sources)}")
                any_figure = True
        if kept or not line.strip():
            lines.append(" ".join(kept))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, any_figure


def _sources(wanted: Sequence[Figure], passages: Sequence[str]) -> list[int] | None:
    """The fewest passages, first found first, that together state every wanted figure; None
    when some figure is stated by none."""
    missing = set(range(len(wanted)))
    sources: list[int] = []
    for n, text in enumerate(passages, start=1):
        found = stated(wanted, text) & missing
        if found:
            sources.append(n)
            missing -= found
        if not missing:
            return sources
    return None


def sft_target(
    item: EvalItem, prompt: Prompt, abstain_text: str = DEFAULT_ABSTAIN, targets: Targets = "supported"
) -> str | None:
    """The answer the generator should have written for `item` given exactly this prompt.

    "Label. Answer [n][m]": the capitalized label and a period when the item has one
    (PubMedQA's yes/no/maybe, so the verdict comes first, where `map_yes_no_maybe` reads it),
    then the answer (see the module docstring for how the reference is cut to what the passages
    support), cited. When the item names gold documents and none of them made it into the
    prompt, the passages cannot support the answer: the target is `abstain_text`, which teaches
    the model to abstain rather than answer from memory. Items without gold documents are
    trusted as answerable. Nothing to say (no label, no answer) also abstains. None when the
    reference states figures and no sentence of it is supported (and there is no label).
    """
    cited = gold_passages(item, prompt)
    if item.gold_doc_ids and not cited:
        return abstain_text
    label = [f"{item.label.strip().capitalize()}."] if item.label and item.label.strip() else []
    answer = (item.answer or "").strip()
    if not answer:
        return _cite(" ".join(label), cited) if label else abstain_text
    if targets == "supported" and figures(answer):
        text, cites_itself = supported_answer(answer, [p.text for p in prompt.passages])
        if not cites_itself and not label:
            return None
        body = " ".join([*label, text]).strip()
        return body if cites_itself else _cite(body, cited)
    return _cite(" ".join([*label, answer]), cited)


def _cite(body: str, cited: Sequence[int]) -> str:
    return f"{body} {''.join(f'[{n}]' for n in cited)}" if cited else body


def fit_target(target: str, budget: int, count: Callable[[str], int]) -> str | None:
    """`target` cut to its first whole sentences (or lines) whose tokens (`count`) fit `budget`,
    with the target's closing citation appended when the kept sentences cite nothing; None when
    not even the first sentence fits. A target that fits is returned as it is.

        >>> fit_target("One two. Three four. [1]", 4, lambda t: len(t.split()))
        'One two. [1]'
    """
    if count(target) <= budget:
        return target
    closing = _CLOSING_CITES.search(target)
    suffix = closing.group(0).strip() if closing else ""
    parts = _PIECE_END.split(target[: closing.start()] if closing else target)
    best, text = None, ""
    for i in range(0, len(parts), 2):
        text += (parts[i - 1] if i else "") + parts[i]
        candidate = text.strip() if _CITE.search(text) or not suffix else f"{text.strip()} {suffix}"
        if count(candidate) > budget:
            break
        best = candidate
    return best


def cite_revision(revision: str, passages: Sequence[str]) -> str | None:
    """A user's revision with the citations its passages support, every sentence cited: one
    that states figures is cut as an SFT target is (`supported_answer`: each figure sentence
    cited by the passages stating its figures, unsupported ones dropped); each sentence left
    without a citation is cited by the passages that state at least `OVERLAP` of its words, or
    dropped (`_cite_prose`). None when nothing is left: taught on this prompt it would teach
    answers the passages do not back.

    Why every sentence: SFT targets keep figure-free sentences uncited, but a preference pair
    contrasts the revision with the model's own answer, which cites. Revisions that cited only
    their figure sentences taught CLAIR to write long uncited prose (`no_citation_rate` 0.026 ->
    0.859 on the 10-Q test questions)."""
    if figures(revision) and not _CITE.search(revision):
        text, supported = supported_answer(revision, passages)
        if not supported:
            return None
        revision = text
    return _cite_prose(revision, passages) or None


def _cite_prose(text: str, passages: Sequence[str]) -> str:
    """`text` with each sentence that cites nothing cited by the passages stating at least
    `OVERLAP` of its words, and dropped when none does; sentences that cite are kept.

        >>> _cite_prose("Sales grew. [1] Apple sells iPhones. Tariffs rose.", ["Apple sells iPhones."])
        'Sales grew. [1] Apple sells iPhones. [1]'
    """
    lines: list[str] = []
    for line in text.strip().splitlines():
        kept: list[str] = []
        for sentence in _CITED_SENTENCE_END.split(line.strip()):
            if _CITE.search(sentence):
                kept.append(sentence)
            elif cited := _overlapping(sentence, passages):
                kept.append(_cite(sentence.strip(), cited))
        if kept or not line.strip():
            lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _overlapping(sentence: str, passages: Sequence[str]) -> list[int]:
    """Numbers (from 1) of the passages stating at least `OVERLAP` of the sentence's words."""
    words = set(normalize_answer(sentence).split())
    if not words:
        return []
    shares = [len(words & set(normalize_answer(p).split())) / len(words) for p in passages]
    return [n for n, share in enumerate(shares, start=1) if share >= OVERLAP]


def ground_revision(
    revision: str, passages: Sequence[str], abstain_text: str, fit: Callable[[str], str | None]
) -> str | None:
    """A revision as the generator should learn it on these passages: cited by the passages
    that support it (`cite_revision`; the abstention sentence stays as it is) and cut by `fit`
    to what the generator may write; None when the passages do not support it.

    Why: the loop's simulated expert revised wrong answers to the reference, which carries no
    `[n]`; CLAIR and KTO taught the model to answer like it, and `no_citation_rate` went from
    0.038 to 0.987 on the 10-Q test questions."""
    if revision.strip() == abstain_text.strip():
        return revision
    cited = cite_revision(revision, passages)
    return fit(cited) if cited is not None else None
