"""Citations after the fact: an answer that cites nothing is given the passages it was drawn from.

Why: on the 10-Q test questions the SFT-tuned SmolLM2 left 13 of 78 answers uncited, every one
of them running to the token limit while copying a passage or repeating its phrases
(docs/results.md, "SFT targets fitted to `max_new_tokens`"). Their words are the passages'
own; naming where they came from gives the reader the source, as the model should have. An
answer drawn from no passage stays uncited, so `no_citation_rate` still counts it, and an
answer that cites anything is left exactly as written.

A passage is a source when it holds a large share of the answer's word trigrams: the sources
are picked greedily, the passage that covers the most trigrams not yet covered first, for as
long as the next one adds at least `MIN_GAIN` of them; when together they cover less than
`COVER`, the answer gets no citation. Trigrams rather than words, so that an answer
sharing only a topic's vocabulary with a passage is not said to come from it.

    >>> passages = ["Net sales rose to $82,959 million in the quarter.", "Weather was mild."]
    >>> attribution("Net sales rose to $82,959 million in the quarter", passages)
    [1]
    >>> attribution("Revenue doubled thanks to new products", passages)
    []

With `GeneratorConfig.attribution = "scored"`, an uncited answer no passage's trigrams account
for (a looping answer rephrases itself, not a passage) is asked of the model instead: at the end
of each of its sentences (`sentence_ends`), the passage number the generator scores likeliest to
follow " [" is a source (`LocalGenerator`; a forward step per option, after the answer is
written, so the answer's text and the model's continuation are unchanged).

    >>> sentence_ends("Sales rose 5% in the quarter. Yes. Costs fell in every region\\n- more")
    [29, 61]
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TypeVar

COVER = 0.5  # the sources together hold at least half the answer's trigrams
MIN_GAIN = 0.15  # each source adds at least this share of them (no passage cited for a stray phrase)
MIN_TRIGRAMS = 3  # an answer of fewer trigrams (under five words) is too short to trace

MIN_WORDS = 4  # a shorter sentence ("Yes.", "1.") is not asked for its source
MAX_SENTENCES = 12  # sentences asked per answer (a looping answer repeats itself long before)

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|(?=\n)")
T = TypeVar("T", bound=Hashable)


def trigrams(text: str) -> set[tuple[str, str, str]]:
    """The distinct lowercased word trigrams of `text` (figures split at their commas)."""
    words = _WORD.findall(text.lower())
    return set(zip(words, words[1:], words[2:], strict=False))


def attribution(answer: str, passages: Sequence[str]) -> list[int]:
    """The numbers (from 1, in ascending order) of the passages `answer` was drawn from; empty
    when it is too short to trace or no pick of passages covers `COVER` of its trigrams."""
    wanted = trigrams(answer)
    if len(wanted) < MIN_TRIGRAMS:
        return []
    picked, covered = greedy_cover([trigrams(p) & wanted for p in passages], MIN_GAIN * len(wanted))
    return sorted(i + 1 for i in picked) if len(covered) >= COVER * len(wanted) else []


def greedy_cover(
    held: Sequence[set[T]], min_gain: float = 1, limit: int | None = None
) -> tuple[list[int], set[T]]:
    """Indexes of the sets in `held` picked greedily -- the one adding the most elements not yet
    covered first, ties to the earlier -- while the next adds at least `min_gain` of them and
    fewer than `limit` are picked; and the elements they cover together. Shared with SFT's
    evidence (`train/generator/evidence.py`), which covers a reference's figures with chunks.

        >>> greedy_cover([{1}, {1, 2, 3}, {3, 4}])
        ([1, 2], {1, 2, 3, 4})
    """
    covered: set[T] = set()
    picked: list[int] = []
    while limit is None or len(picked) < limit:
        gains = [len(h - covered) for h in held]
        best = max(range(len(held)), key=lambda i: gains[i], default=None)  # max: the first best
        if best is None or gains[best] < min_gain:
            break
        picked.append(best)
        covered |= held[best]
    return picked, covered


def cite_suffix(answer: str, passages: Sequence[str]) -> str:
    """What to append to an uncited answer to cite its sources (" [2][3]"), or "" for none."""
    return suffix_citing(attribution(answer, passages))


def suffix_citing(numbers: Sequence[int]) -> str:
    """ " [2][3]" for passages 2 and 3; "" for none."""
    return (" " + "".join(f"[{n}]" for n in numbers)) if numbers else ""


def sentence_ends(text: str) -> list[int]:
    """Where each sentence or line of `text` of at least `MIN_WORDS` words ends (the index after
    its punctuation), the unfinished last one included; at most `MAX_SENTENCES`."""
    ends: list[int] = []
    start = 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.end() if m is not None else len(text.rstrip())
        if len(text[start:end].split()) >= MIN_WORDS:
            ends.append(end)
        start = end
    return ends[:MAX_SENTENCES]
