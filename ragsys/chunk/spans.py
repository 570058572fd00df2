"""Spans of a page's text: sentences, words, table rows and cells, as (start, end) offsets.

Pure functions over text, so the chunker's cutting rules are tested exactly; offsets always
index the page text itself, which keeps every chunk's offsets exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")


_ABBREVIATIONS = frozenset(
    "e.g i.e etc al fig figs eq eqs no nos vs dr mr mrs ms prof inc ltd co corp jr sr st approx "
    "ref refs vol pp ca cf u.s u.k jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


_WORD_SPAN = re.compile(r"\S+")


PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[ \t]*\n|\s*$)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Span:
    page: int
    start: int
    end: int
    first: bool = True  # starts its sentence or row (False for later words or cells of one)


Splitter = Callable[[str, int, int], list[tuple[int, int]]]  # (text, start, end) -> spans in text


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of `text[start:end]` as (start, end) offsets into `text`, whitespace trimmed.

    A period after a known abbreviation or a single capital (an initial) does not end one.
    """
    spans, begin = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        word_start = max(text.rfind(" ", begin, m.start()), text.rfind("\n", begin, m.start()), begin - 1)
        word = text[word_start + 1 : m.start()].lower().lstrip("([\"'")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        spans.append(trimmed(text, begin, m.end()))
        begin = m.end()
    spans.append(trimmed(text, begin, end))
    return [(a, b) for a, b in spans if b > a]


def word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD_SPAN.finditer(text, start, end)]


def cell_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cuts before each inner "|" of a markdown row, so every cell keeps its left bar."""
    cuts = [i for i in range(start + 1, end - 1) if text[i] == "|"]
    return [trimmed(text, a, b) for a, b in zip([start, *cuts], [*cuts, end], strict=True)]


def row_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, line_start = [], start
    while line_start < end:
        line_end = text.find("\n", line_start, end)
        line_end = end if line_end < 0 else line_end
        spans.append(trimmed(text, line_start, line_end))
        line_start = line_end + 1
    return [(a, b) for a, b in spans if b > a]
