"""Text to BM25 terms: lowercase, regex tokens, optional stopwords and Snowball stemming.

The same `Tokenizer` must see the corpus and the queries, so its config travels inside
`BM25Config`. Defaults were chosen on SciFact *train* queries
(`eval/bench/bm25_scifact_quality.py`): English stopwords, the Snowball English stemmer and
a 2-character minimum beat plain `\\w+` tokens by about 0.03 nDCG@10 (stemming gives most of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import Stemmer
from pydantic import field_validator

from ragsys.types import Frozen

# Written for this project (no download): articles, pronouns, auxiliaries, prepositions,
# conjunctions and a few frequent adverbs. Content words such as "not", "no" and "against"
# are kept out on purpose: in claim verification they flip meaning.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself of off on once only or other our ours ourselves out over own same
    she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself yourselves
    """.split()
)


class TokenizerConfig(Frozen):
    """How text becomes terms; changing it requires re-indexing the corpus.

    `pattern` must have no capturing groups (use `(?:...)`), because `re.findall`
    would return the groups instead of whole tokens.
    """

    lowercase: bool = True
    pattern: str = r"\w+"
    stopwords: Literal["none", "en"] = "en"
    stemmer: Literal["none", "english"] = "english"
    min_token_len: int = 2

    @field_validator("pattern")
    @classmethod
    def _compiles_without_groups(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"pattern {pattern!r} is not a valid regex: {err}") from err
        if compiled.groups:
            raise ValueError(f"pattern {pattern!r} has capturing groups; write them as (?:...)")
        return pattern

    @field_validator("min_token_len")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("min_token_len must be >= 1")
        return value


class Tokenizer:
    """Splits text into terms; stems each distinct token once and remembers it.

    The stem cache belongs to this tokenizer (no module-level state); it grows with the
    vocabulary seen, which is bounded in practice (about 30k entries for SciFact).

    >>> Tokenizer(TokenizerConfig()).tokenize("The cells were dividing rapidly.")
    ['cell', 'divid', 'rapid']
    """

    def __init__(self, config: TokenizerConfig) -> None:
        self.config = config
        self._regex = re.compile(config.pattern)
        self._stopwords = ENGLISH_STOPWORDS if config.stopwords == "en" else frozenset()
        self._stemmer = Stemmer.Stemmer("english") if config.stemmer == "english" else None
        self._stems: dict[str, str] = {}

    def tokenize(self, text: str) -> list[str]:
        if self.config.lowercase:
            text = text.lower()
        tokens: list[str] = self._regex.findall(text)
        tokens = _filter(tokens, self.config.min_token_len, self._stopwords, self.config.lowercase)
        return self._stem(tokens) if self._stemmer is not None else tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(text) for text in texts]

    def _stem(self, tokens: list[str]) -> list[str]:
        stems = self._stems
        missing = list({t for t in tokens if t not in stems})
        if missing and self._stemmer is not None:
            stems.update(zip(missing, self._stemmer.stemWords(missing), strict=True))
        return [stems[t] for t in tokens]


def _filter(tokens: Sequence[str], min_len: int, stopwords: frozenset[str], lowered: bool) -> list[str]:
    """Stopwords are matched before stemming (the list holds surface forms) and regardless
    of case, so "The" at a sentence start goes too when case is kept."""
    if min_len == 1 and not stopwords:
        return list(tokens)
    if lowered:
        return [t for t in tokens if len(t) >= min_len and t not in stopwords]
    return [t for t in tokens if len(t) >= min_len and t.lower() not in stopwords]
