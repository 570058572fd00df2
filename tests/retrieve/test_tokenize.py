from __future__ import annotations

import pytest
import Stemmer
from pydantic import ValidationError

from ragsys.retrieve.tokenize import ENGLISH_STOPWORDS, Tokenizer, TokenizerConfig

PLAIN = TokenizerConfig(stopwords="none", stemmer="none", min_token_len=1)


def test_default_drops_stopwords_and_stems() -> None:
    tokens = Tokenizer(TokenizerConfig()).tokenize("The cells were dividing rapidly.")
    assert tokens == ["cell", "divid", "rapid"]


def test_plain_config_is_lowercased_regex_words() -> None:
    assert Tokenizer(PLAIN).tokenize("IL-6 levels, in 5 of THE mice") == [
        "il",
        "6",
        "levels",
        "in",
        "5",
        "of",
        "the",
        "mice",
    ]


def test_negations_survive_the_stopword_list() -> None:
    """Claims hinge on them: "X does not cause Y" must not match like "X causes Y"."""
    assert {"not", "no", "nor", "against"}.isdisjoint(ENGLISH_STOPWORDS)
    assert Tokenizer(TokenizerConfig(stemmer="none")).tokenize("it is not the case") == ["not", "case"]


def test_stopwords_match_regardless_of_case_when_case_is_kept() -> None:
    config = TokenizerConfig(lowercase=False, stemmer="none")
    assert Tokenizer(config).tokenize("The Cells of THE mouse") == ["Cells", "mouse"]


def test_stemmer_matches_pystemmer_english() -> None:
    words = ["running", "studies", "cells", "generalization", "mice", "dividing", "studies"]
    tokenizer = Tokenizer(TokenizerConfig(stopwords="none"))
    assert tokenizer.tokenize(" ".join(words)) == Stemmer.Stemmer("english").stemWords(words)
    # the second call is served from the cache and must agree with the first
    assert tokenizer.tokenize(" ".join(words)) == Stemmer.Stemmer("english").stemWords(words)


def test_min_token_len_drops_short_tokens() -> None:
    config = TokenizerConfig(stopwords="none", stemmer="none", min_token_len=2)
    assert Tokenizer(config).tokenize("a 5 mg dose of x") == ["mg", "dose", "of"]


def test_custom_pattern_without_groups() -> None:
    config = TokenizerConfig(pattern=r"\w+(?:-\w+)*", stopwords="none", stemmer="none")
    assert Tokenizer(config).tokenize("IL-6 and TNF-alpha") == ["il-6", "and", "tnf-alpha"]


def test_tokenize_many_is_tokenize_per_text() -> None:
    tokenizer = Tokenizer(TokenizerConfig())
    texts = ["Aspirin prevents strokes.", "", "Stroke risk rose."]
    assert tokenizer.tokenize_many(texts) == [tokenizer.tokenize(t) for t in texts]
    assert tokenizer.tokenize_many(texts)[1] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"pattern": r"(\w+)"},
        {"pattern": r"[unclosed"},
        {"min_token_len": 0},
        {"stemmer": "porter"},
        {"extra": 1},
    ],
)
def test_bad_config_fails_early(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TokenizerConfig.model_validate(fields)


def test_config_round_trips_through_json() -> None:
    config = TokenizerConfig(pattern=r"[^\W_]+", stopwords="none", min_token_len=2)
    assert TokenizerConfig.model_validate_json(config.model_dump_json()) == config
