"""Copied figures: a number the answer states is one its passages (or the question) state.

A 135M generator asked for net sales over a table that says "82,959" writes "$202,200 million":
it has learned that a figure goes there, not which. A finance reader cannot forgive an
invented figure, and the figure is always on the page. With `GeneratorConfig.figures =
"copied"`, decoding keeps every number it writes a number some passage or the question states,
character for character ("82,959", not "82959" or "82.9"): at each step, the highest-scoring
tokens that would start, extend or end a number no source states are masked, so the model
still chooses *which* stated figure and *where*, by its own scores.

What is exempt: a finished number of one or two digits ("3 months", list markers "1."; not a
percentage: "20%" is a figure), though while it is written it must still be the start of a
stated number, or the model could commit to "20" and be unable to finish "202,200" as anything
stated; and numbers in brackets (citations "[2]", which `citations.py` checks against the
passages).

Checked per step on the `TOP_K` best tokens only, best first, until one is allowed (greedy) or
all are checked (sampling): a few string operations per token, nothing like a forward pass. If
none of them is allowed, the step goes unguarded rather than forcing a token the model ranks
below its top 64.

Example:
    >>> guard = FigureGuard(["|Total net sales|82,959|"], piece={1: "82", 2: ",9", 3: ",1", 4: "59"}.get)
    >>> guard.allows("Net sales were $", 1), guard.allows("Net sales were $82", 3)
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ragsys.generate.watch import masked_before_allowed

_NUMBER = re.compile(r"\d(?:[\d,.]*\d)?")
_OPEN = re.compile(r"\[?\d[\d,.]*$")  # the number the text ends in, with a separator it may go on past
_SMALL = re.compile(r"\d{1,2}")
_PERCENT = re.compile(r"\s*(%|per\s?cent)")
TOP_K = 64  # tokens checked per step, best first


class FigureGuard:
    """Which next tokens keep the answer's numbers copied from `sources` (module docstring);
    `piece(token)` is a token's text."""

    def __init__(self, sources: Sequence[str], piece: Callable[[int], str | None]) -> None:
        self.allowed = frozenset(m.group(0) for text in sources for m in _NUMBER.finditer(text))
        self._prefixes = frozenset(a[:i] for a in self.allowed for i in range(1, len(a) + 1))
        self._piece = piece

    def allows(self, text: str, token: int) -> bool:
        """Whether `token` may follow the answer `text` decoded so far."""
        piece = self._piece(token) or ""
        open_number = _OPEN.search(text)
        if open_number is None and not any(c.isdigit() for c in piece):
            return True
        tail = (open_number.group(0) if open_number else text[-1:]) + piece  # "[" before a citation
        for m in _NUMBER.finditer(tail):
            run, after = m.group(0), tail[m.end() :]
            if m.start() > 0 and tail[m.start() - 1] == "[":
                continue  # a citation
            small = _SMALL.fullmatch(run) is not None and not _PERCENT.match(after)  # "20%" is a figure
            ended = run in self.allowed or small
            if after == "":  # the number may go on: it must be the start of a stated one
                ok = run in self._prefixes
            elif len(after) == 1 and after in ",.":  # "5,210," may go on ("5,210,000") or end a clause
                ok = run + after in self._prefixes or ended
            else:
                ok = ended
            if not ok:
                return False
        return True

    def blocked(self, text: str, ranked: Sequence[int], greedy: bool) -> list[int]:
        """Of `ranked` (the best tokens, best first), those to mask: every one not allowed
        before the first allowed one (greedy), or every one not allowed (sampling); none
        when no token in `ranked` is allowed (the step goes unguarded)."""
        return masked_before_allowed(self.allows, text, ranked, greedy)
