"""Inverse-cloze pseudo-queries: free relevance signal from the corpus itself.

A sentence taken out of a passage is a pseudo-question whose answer is the rest of that
passage (Lee et al. 2019, "Latent Retrieval for Weakly Supervised Open Domain QA"). It costs
no generation, so a CPU can make thousands in seconds, where a 135M generator writes a few
questions a minute. The sentence is removed from the positive most of the time so that the
ranker must learn topical relevance rather than exact string overlap; kept the rest of the
time so exact matches are not punished.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from ragsys.index.reader import Index
from ragsys.train.mining.synthetic import sample_chunks
from ragsys.types import Chunk

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def ict_pair(
    chunk: Chunk, rng: random.Random, keep_rate: float = 0.1, min_words: int = 6
) -> tuple[str, Chunk] | None:
    """(pseudo-query sentence, the chunk without it) or None when the chunk has too few sentences."""
    sents = sentences(chunk.text)
    candidates = [i for i, s in enumerate(sents) if len(s.split()) >= min_words]
    if len(sents) < 3 or not candidates:
        return None
    i = rng.choice(candidates)
    rest = sents if rng.random() < keep_rate else sents[:i] + sents[i + 1 :]
    return sents[i], chunk.model_copy(update={"text": " ".join(rest)})


def ict_pairs(
    index: Index,
    n: int,
    seed: int,
    min_words: int = 40,
    count: Callable[[str], int] = lambda t: len(t.split()),
) -> list[tuple[str, Chunk]]:
    """Up to `n` pseudo-query pairs from chunks of at least `min_words` words, sampled with `seed`."""
    rng = random.Random(seed)
    out: list[tuple[str, Chunk]] = []
    for chunk in sample_chunks(index, 3 * n, min_tokens=min_words, count=count, seed=seed):
        pair = ict_pair(chunk, rng)
        if pair is not None:
            out.append(pair)
            if len(out) == n:
                break
    return out
