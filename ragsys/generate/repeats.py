"""No repeated runs: the answer never states the same `n` tokens twice.

A small generator, tuned or not, falls into loops: "The section provides the following
information:" twenty times, "NVIDIA NVIDIA NVIDIA ...", one sentence again and again until
`max_new_tokens`. Such an answer never reaches the end where it would cite, and says nothing
new after its first round (15 of the 78 tuned 10-Q test answers cited nothing; 12 of them
looped; docs/results.md). With `GeneratorConfig.no_repeat_ngram = n`, decoding masks every
next token that would complete a run of `n` tokens the answer already contains, so the model
must leave the loop by its own next-best choice: end, cite, or say something new.

This is `transformers`' `no_repeat_ngram_size` with one difference that matters for answers
from passages: only the answer's own tokens count, not the prompt's, so copying a figure or a
phrase from a passage is never blocked. `n` should be long (SmolLM2 writes each digit as its
own token: "September 30, 2023" is 8 tokens), so a sentence that repeats a date clause with a
different figure is not cut.

Example:
    >>> sorted(repeating([5, 6, 7, 5, 6], 3))  # "5 6" was followed by 7: a second "5 6 7" is blocked
    [7]
    >>> repeating([5, 6, 7, 5, 6], 0)  # off
    set()
"""

from __future__ import annotations

from collections.abc import Sequence


def repeating(ids: Sequence[int], n: int) -> set[int]:
    """The tokens that, appended to `ids`, would repeat an `n`-token run `ids` already holds
    (none when `n` is 0, off)."""
    if n <= 0 or len(ids) < n:
        return set()
    if n == 1:
        return set(ids)
    tail = list(ids[len(ids) - n + 1 :])
    last = tail[-1]
    out: set[int] = set()
    for end in range(n - 2, len(ids) - 1):  # ids[end] closes a candidate (n-1)-token prefix
        if ids[end] == last and list(ids[end - n + 2 : end + 1]) == tail:
            out.add(ids[end + 1])
    return out
