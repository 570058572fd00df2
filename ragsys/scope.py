"""Scoping: route a question to the documents it is about before retrieval searches them.

Questions over filings name a company and a period ("What was Intel's R&D expenditure in Q1
2023?"), and their evidence sits in one filing; a search over every filing finds the right
figures in the wrong company's or quarter's statements. A study of question answering over SEC
filings found that a store per filing, instead of one shared store, lifted a frontier model
from 19% to 50% correct. `MetadataScoper` reads the question for entities the index's document
metadata knows (`ragsys.index.metadata`) and restricts retrieval to the documents that match:

* company: a document's ticker or the distinctive words of its company name ("Apple" for
  "Apple Inc.", "Amazon" for "AMAZON.COM, INC.") as a whole word of the question;
* period: "Q3 2023", "2023 Q3", "third quarter of 2023", "3Q23" name a quarter, "fiscal 2023"
  or a bare year name a year (matched against `period`, else `period_end`); "latest",
  "most recent" or "last quarter" pick each matched company's latest `period_end`;
* form: "10-Q", "10-K", "annual report", "quarterly report".

A route is confident (1.0) when the question names a company the documents have, and half
so (0.5) when it names only a period or a form: "Q3 2023" alone still narrows twenty filings to
five, but which five is a weaker guess. Below `min_confidence`, or when no document matches
every cue found, the search is not restricted (`Route.filters` is empty) and `Route.reason`
says why; a request's own filters apply either way.

Example:
    >>> docs = {"a.pdf": {"company": "Apple Inc.", "period": "2023 Q3"}}
    >>> MetadataScoper(ScopeConfig(), docs).route("What were Apple's net sales in Q3 2023?").filters
    {'doc': ('a.pdf',)}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Protocol

from pydantic import Field

from ragsys.types import Frozen

_SUFFIXES = {
    "inc", "incorporated", "corporation", "corp", "co", "company", "ltd", "limited", "plc", "holdings",
    "group", "sa", "ag", "nv", "llc", "lp", "the", "com",
}  # fmt: skip
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_Q_YEAR = re.compile(
    r"\bQ([1-4])[\s,'-]*((?:19|20)?\d\d)\b|\b((?:19|20)\d\d)[\s,-]*Q([1-4])\b|\b([1-4])Q[\s-]*((?:19|20)?\d\d)\b",
    re.IGNORECASE,
)
_ORDINAL_QUARTER = re.compile(
    r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter(?:\s+of)?"
    r"(?:\s+(?:fiscal\s+)?((?:19|20)\d\d))?",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:fiscal\s+(?:year\s+)?|FY\s?)?((?:19|20)\d\d)\b", re.IGNORECASE)
_LATEST = re.compile(r"\b(latest|most recent|last quarter|recent quarter|current quarter)\b", re.IGNORECASE)
_FORMS = {
    "10-q": "10-Q", "10q": "10-Q", "quarterly report": "10-Q", "10-k": "10-K", "10k": "10-K",
    "annual report": "10-K",
}  # fmt: skip


class ScopeConfig(Frozen):
    """Route questions to the documents whose metadata they name (see the module docstring).

    Example:
        >>> ScopeConfig(min_confidence=0.75).min_confidence
        0.75
    """

    kind: Literal["metadata"] = "metadata"
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)

    def build(self, source: MetadataSource) -> MetadataScoper:
        return MetadataScoper(self, source.document_metadata())


class MetadataSource(Protocol):
    """What the scoper reads from an index (`ragsys.index.reader.Index` is one)."""

    def document_metadata(self) -> dict[str, dict[str, str]]: ...


class Route(Frozen):
    filters: dict[str, tuple[str, ...]] = {}
    confidence: float = 0.0
    reason: str = ""


class Cues(Frozen):
    companies: tuple[str, ...] = ()  # names as the question writes them
    quarter: tuple[str, int] | None = None  # (year, quarter)
    year: str | None = None
    latest: bool = False
    form: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.companies or self.quarter or self.year or self.latest or self.form)


class MetadataScoper:
    def __init__(self, config: ScopeConfig, documents: Mapping[str, Mapping[str, str]]) -> None:
        self.config, self._docs = config, documents
        self._names = {d: company_names(m) for d, m in documents.items()}

    def route(self, question: str) -> Route:
        cues = read_cues(question, {n for names in self._names.values() for n in names})
        if not cues.any:
            return Route(reason="the question names no company, period or form the documents have")
        chosen = [d for d in self._docs if self._matches(d, cues)]
        if cues.latest and chosen:
            chosen = self._latest(chosen)
        if not chosen:
            return Route(reason="no document matches every cue the question gives")
        confidence = 1.0 if cues.companies else 0.5
        if confidence < self.config.min_confidence:
            return Route(
                confidence=confidence, reason=f"confidence {confidence} < {self.config.min_confidence}"
            )
        reason = f"{len(chosen)} of {len(self._docs)} documents"
        return Route(filters={"doc": tuple(sorted(chosen))}, confidence=confidence, reason=reason)

    def _matches(self, doc: str, cues: Cues) -> bool:
        meta = self._docs[doc]
        if cues.companies and not set(cues.companies) & self._names[doc]:
            return False
        period, end = meta.get("period", ""), meta.get("period_end", "")
        if cues.quarter is not None and period != f"{cues.quarter[0]} Q{cues.quarter[1]}":
            return False
        if cues.year is not None and not (period.startswith(cues.year) or end.startswith(cues.year)):
            return False
        return cues.form is None or meta.get("form") == cues.form

    def _latest(self, docs: list[str]) -> list[str]:
        """Each company's documents with its latest `period_end` (a 10-Q and its exhibits tie)."""
        latest: dict[frozenset[str], str] = {}
        for d in docs:
            key, end = frozenset(self._names[d]), self._docs[d].get("period_end", "")
            latest[key] = max(latest.get(key, ""), end)
        return sorted(
            d for d in docs if self._docs[d].get("period_end", "") == latest[frozenset(self._names[d])]
        )


def company_names(meta: Mapping[str, str]) -> set[str]:
    """The lower-case words a question may call this document's company by."""
    names = {meta["ticker"].lower()} if meta.get("ticker") else set()
    words = re.findall(r"[A-Za-z][A-Za-z&'-]*", meta.get("company", "").replace(".com", " com"))
    distinctive = [w.lower() for w in words if w.lower() not in _SUFFIXES]
    if distinctive:
        names.add(" ".join(distinctive))
        names.add(distinctive[0])
    return names


def read_cues(question: str, names: set[str]) -> Cues:
    text = question.lower()
    companies = tuple(sorted(n for n in names if re.search(rf"\b{re.escape(n)}\b", text)))
    quarter = _quarter(question)
    years = set(_YEAR.findall(question))
    year = next(iter(years)) if quarter is None and len(years) == 1 else None  # "2022 to 2023": no cue
    form = next((f for k, f in _FORMS.items() if k in text), None)
    return Cues(
        companies=companies, quarter=quarter, year=year, latest=bool(_LATEST.search(question)), form=form
    )


def _quarter(question: str) -> tuple[str, int] | None:
    """The one quarter the question names, or None (none, or several: a comparison)."""
    found: set[tuple[str, int]] = set()
    for m in _Q_YEAR.finditer(question):
        q, y = next((m.group(a), m.group(b)) for a, b in ((1, 2), (4, 3), (5, 6)) if m.group(a))
        found.add(((y if len(y) == 4 else "20" + y), int(q)))
    for m in _ORDINAL_QUARTER.finditer(question):
        if m.group(2):
            found.add((m.group(2), _ORDINALS[m.group(1).lower()]))
    return next(iter(found)) if len(found) == 1 else None
