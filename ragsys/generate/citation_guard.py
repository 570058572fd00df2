"""Citations by figure: a citation that follows a figure names a passage that states it.

Why: on the 10-Q test questions the tuned SmolLM2 cites the right filing every time (scoping
keeps every passage inside it), yet of the 71 figures its cited sentences state that some given
passage states, the passage they cite states 21 (docs/results.md, "Citations by figure"): a
third, what picking one of three passages at random gives. The model has learned that a
citation goes there, not which; the figure it just wrote says which.

With `GeneratorConfig.citations = "figures"` (the default), when the answer opens a citation ("[") after
stating figures, the number it may write is restricted to the passages that state the most of
the figures written since its previous citation, character for character ("82,959" as the
table prints it). Nothing is forced where nothing is known: a stretch with no figure, or with
figures no passage states, is cited as the model likes, and so is a stretch whose figures every
passage states equally. The masking works like the figure guard's (`figure_guard`): the model's
best tokens that would name another passage are masked until one allowed is reached, so the
model still chooses among the passages that state the figure, and the streamed text is never
rewritten. The scored attribution (`attribution="scored"`) picks from the same passages.

What counts as a figure here: a number of three or more digits, a decimal, or a percentage;
not a calendar year (1900-2099 with no separator) and not a citation's own number.

Example:
    >>> guard = CitationGuard(["Revenue 5,210 in Q1", "Net sales 82,959"], piece={1: "1", 2: "2"}.get)
    >>> text = "Net sales were $82,959 million ["
    >>> guard.allows(text, 1), guard.allows(text, 2)
    (False, True)
    >>> guard.allows("Sales grew [", 1)  # no figure to go by
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ragsys.generate.watch import masked_before_allowed

_NUMBER = re.compile(r"(?<![\w.,\[])\d(?:[\d,.]*\d)?(?!\w)(?P<pct>\s*%)?")
_WRITING = re.compile(r"\[(\d+)(?=(.?))")  # a citation number and the character after it, if any
_TRAILING_CITES = re.compile(r"(?:\s*\[\d+\])+\s*$")


def stated_numbers(text: str) -> list[str]:
    """The figures of `text` as written, in order (see the module docstring for what counts).

    >>> stated_numbers("In 2023 sales were 82,959 [1], up 3% from 12 stores and 1.5 points")
    ['82,959', '3', '1.5']
    """
    out: list[str] = []
    for m in _NUMBER.finditer(text):
        raw = m.group(0).rstrip("% ").rstrip()
        plain = raw.isdigit()
        if plain and len(raw) <= 2 and not m.group("pct"):
            continue  # "3 months", "12 stores": a count, not a figure
        if plain and len(raw) == 4 and 1900 <= int(raw) <= 2099:
            continue  # a calendar year
        out.append(raw.rstrip(".,"))
    return out


def claim_before(text: str) -> str:
    """The stretch a citation opened right after `text` covers: back to the previous citation,
    leaving out the citations right before it ("... 82,959 [2]" + "[" -> "... 82,959")."""
    head = _TRAILING_CITES.sub("", text)
    return head[head.rfind("]") + 1 :]


def stating(claim: str, passages: Sequence[frozenset[str]]) -> frozenset[int]:
    """The numbers (from 1) of the passages stating the most of `claim`'s figures; empty when
    none states any, or every passage states as many (nothing to choose by)."""
    wanted = set(stated_numbers(claim))
    if not wanted or not passages:
        return frozenset()
    counts = [len(wanted & p) for p in passages]
    best = max(counts)
    if best == 0 or min(counts) == best:
        return frozenset()
    return frozenset(i + 1 for i, c in enumerate(counts) if c == best)


class CitationGuard:
    """Which next tokens keep a citation on a passage stating the figures it follows (module
    docstring); `passages` are the prompt's, in order; `piece(token)` is a token's text."""

    def __init__(self, passages: Sequence[str], piece: Callable[[int], str | None]) -> None:
        self.passages = [frozenset(stated_numbers(p)) for p in passages]
        self._piece = piece
        self._targets: dict[str, frozenset[int]] = {}  # claim -> passages (many tokens, one claim)

    def targets(self, claim: str) -> frozenset[int]:
        """`stating(claim, ...)` over this guard's passages, remembered per claim."""
        if claim not in self._targets:
            self._targets[claim] = stating(claim, self.passages)
        return self._targets[claim]

    def allows(self, text: str, token: int) -> bool:
        """Whether `token` may follow the answer `text` decoded so far."""
        piece = self._piece(token) or ""
        if not any(c.isdigit() for c in piece):
            return True
        new = text + piece
        for m in _WRITING.finditer(new, max(0, len(text) - 8)):
            if m.end(1) <= len(text):
                continue  # written before this token: not this step's to check
            targets = self.targets(claim_before(new[: m.start()]))
            number, closed = m.group(1), m.group(2) != ""
            if targets and not any(
                str(t) == number if closed else str(t).startswith(number) for t in targets
            ):
                return False
        return True

    def blocked(self, text: str, ranked: Sequence[int], greedy: bool) -> list[int]:
        """Of `ranked` (the best tokens, best first), those to mask: every one not allowed
        before the first allowed one (greedy), or every one not allowed (sampling); none when
        no token in `ranked` is allowed (the step goes unguarded)."""
        return masked_before_allowed(self.allows, text, ranked, greedy)
