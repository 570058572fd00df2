"""Reading a generated answer: which numbered passages it cites, and whether it abstained.

Both are pure functions over the answer text, so they are tested without a model and can
be re-run over stored answers.

Citation forms understood (whitespace inside the brackets is allowed):
`[2]`, `[1, 3]`, `[1-3]` (also with an en dash), `[1][2]`, and mixes such as `[1, 3-4]`.
Brackets holding anything else (`[truncated]`, `[a]`) are not citations.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping

from ragsys.types import Citation, Frozen, Hit

CITATION_CHARS = 300  # Citation.text is the passage's first 300 characters, cut at a space, plus "…"
MAX_RANGE = 20  # a longer range ([1-999]) is a typo, not a citation of 999 passages: read its endpoints

_GROUP = re.compile(r"\[\s*(\d+(?:\s*[-–,]\s*\d+)*)\s*\]")
_ITEM = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")


class ParsedCitations(Frozen):
    """Resolved citations in first-mention order, and how many distinct numbers named no passage."""

    citations: tuple[Citation, ...] = ()
    dropped: int = 0


def cited_numbers(text: str) -> list[int]:
    """Every passage number the text cites, in order of mention, repeats included."""
    out: list[int] = []
    for group in _GROUP.finditer(text):
        for item in _ITEM.finditer(group.group(1)):
            out.extend(_expand(int(item.group(1)), item.group(2)))
    return out


def _expand(first: int, last_text: str | None) -> Iterator[int]:
    if last_text is None:
        yield first
        return
    last = int(last_text)
    if first <= last and last - first < MAX_RANGE:
        yield from range(first, last + 1)
    else:  # reversed or absurd ranges: trust only the numbers actually written
        yield from (first, last)


def parse_citations(text: str, passages: Mapping[int, Hit]) -> ParsedCitations:
    """Resolve the numbers cited in `text` against the prompt's passages (number -> hit).

    Citations are de-duplicated in first-mention order. A number that names no passage
    (a hallucinated `[7]` when five were given, or `[0]`) is dropped; `dropped` counts
    distinct such numbers, matching the de-duplication of valid ones.
    """
    seen: set[int] = set()
    citations: list[Citation] = []
    dropped = 0
    for n in cited_numbers(text):
        if n in seen:
            continue
        seen.add(n)
        hit = passages.get(n)
        if hit is None:
            dropped += 1
        else:
            citations.append(citation(n, hit))
    return ParsedCitations(citations=tuple(citations), dropped=dropped)


def citation(n: int, hit: Hit) -> Citation:
    chunk = hit.chunk
    return Citation(
        n=n,
        chunk_id=chunk.id,
        doc=chunk.doc_id,  # the id eval sets name as gold documents
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        text=shorten(chunk.text, CITATION_CHARS),
    )


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters plus "…", cut at the last space when there is one nearby."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip() + "…"


def normalize(text: str) -> str:
    """Lowercase letters and digits separated by single spaces; curly quotes and dashes vanish.

    Models vary punctuation, quoting, apostrophes ("can't" vs "can’t") and spacing when
    they repeat a phrase, so abstention is matched on this form.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[’'`]", "", text)
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def is_abstention(answer: str, abstain_text: str) -> bool:
    """True when the answer *is* the abstention phrase: its normalized form starts with it.

    Startswith, not equality, because small models append a reason or a stray citation
    ("I cannot answer this from the documents. The passages discuss ..."); not a substring
    search, because an answer that gives facts and then hedges has not abstained.
    Also true for an empty answer: nothing was claimed.
    """
    said, phrase = normalize(answer), normalize(abstain_text)
    return not said or (bool(phrase) and (said == phrase or said.startswith(phrase + " ")))
