"""Headings from font size and weight, decided per document.

The body size is the size most characters of the document are set in. Lines set
larger are headings, one level per distinct size (level 1 = largest); short bold
runs at body size are headings one level below the smallest sized heading (SEC
filings and many reports mark headings by weight only). Statistics are
per document, not per page, so a page of mostly footnotes does not turn its few
body lines into headings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import NamedTuple

from ragsys.extract.assemble import Part

MAX_LEVEL = 6
# A heading size is at least this much larger than the body size (ratio and points):
# 10 pt body with 11 pt section titles is common; 10.0 vs 10.4 is rounding noise.
_SIZE_RATIO = 1.08
_SIZE_DELTA = 0.8
# Longer runs are emphasized paragraphs, not headings.
_MAX_SIZED_LINES, _MAX_SIZED_CHARS = 4, 300
_MAX_BOLD_LINES, _MAX_BOLD_CHARS = 2, 150
_MAX_NUMBER_CHARS = 8
_LETTER = re.compile(r"[^\W\d_]")  # any unicode letter


class Line(NamedTuple):
    """One text line as the PDF sets it: `size` is the size most of its characters use."""

    text: str
    size: float
    bold: bool
    upright: bool = True  # rotated text (margin stamps, axis labels) is never a heading


@dataclass(frozen=True)
class HeadingStyle:
    body_size: float
    levels: dict[float, int]  # font size -> heading level
    bold_level: int


def heading_style(lines: Iterable[Line]) -> HeadingStyle:
    """Derive body size and heading levels from every line of a document."""
    weight: Counter[float] = Counter()
    candidates: set[float] = set()
    for line in lines:
        weight[line.size] += len(line.text)
        if line.upright and _has_letter(line.text) and len(line.text) <= _MAX_SIZED_CHARS:
            candidates.add(line.size)
    if not weight:
        return HeadingStyle(body_size=0.0, levels={}, bold_level=1)
    body = max(weight, key=lambda size: (weight[size], -size))  # tie: the smaller size
    larger = (s for s in candidates if s >= body * _SIZE_RATIO and s - body >= _SIZE_DELTA)
    sizes = sorted(larger, reverse=True)
    levels = {size: min(rank, MAX_LEVEL) for rank, size in enumerate(sizes, start=1)}
    return HeadingStyle(body_size=body, levels=levels, bold_level=min(len(sizes) + 1, MAX_LEVEL))


def block_parts(lines: Sequence[Line], style: HeadingStyle) -> list[Part]:
    """Split one text block into heading and paragraph parts (adjacent body runs merge)."""
    parts: list[Part] = []
    body: list[str] = []
    for (level, by_weight), run in groupby(lines, key=lambda line: _candidate(line, style)):
        texts = [line.text for line in run]
        if level and _has_letter("".join(texts)) and _is_heading_run(texts, by_weight=by_weight):
            if body:
                parts.append(Part("paragraph", join_lines(body)))
                body = []
            parts.append(Part("heading", join_lines(texts), level))
        else:
            body.extend(texts)
    if body:
        parts.append(Part("paragraph", join_lines(body)))
    return parts


def _candidate(line: Line, style: HeadingStyle) -> tuple[int, bool]:
    """(heading level or 0, whether the level comes from weight rather than size).

    Short lines without letters ("1", "2.3") may be section numbers that PyMuPDF
    split from their title; they join the title's run (a run needs one letter).
    """
    if not line.upright or not (_has_letter(line.text) or len(line.text.strip()) <= _MAX_NUMBER_CHARS):
        return 0, False
    if line.size in style.levels:
        return style.levels[line.size], False
    if line.bold and line.size >= style.body_size - 0.5:
        return style.bold_level, True
    return 0, False


def _is_heading_run(texts: list[str], *, by_weight: bool) -> bool:
    chars = sum(len(t) for t in texts)
    if by_weight:
        ends_sentence = texts[-1].rstrip().endswith((".", ",", ";"))
        return len(texts) <= _MAX_BOLD_LINES and chars <= _MAX_BOLD_CHARS and not ends_sentence
    return len(texts) <= _MAX_SIZED_LINES and chars <= _MAX_SIZED_CHARS


def join_lines(texts: Iterable[str]) -> str:
    """Join wrapped lines with spaces; undo end-of-line hyphenation before a lowercase letter."""
    out = ""
    for raw in texts:
        text = raw.strip()
        if not text:
            continue
        if not out:
            out = text
        elif out.endswith("-") and out[-2:-1].isalpha() and text[0].islower():
            out = out[:-1] + text
        elif _is_cjk(out[-1]) and _is_cjk(text[0]):
            out += text  # CJK does not put spaces between words
        else:
            out += " " + text
    return out


def _has_letter(text: str) -> bool:
    return _LETTER.search(text) is not None


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff"
