"""No repeated runs (ragsys.generate.repeats): a looping answer must move on, a copied phrase need not."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragsys.generate.local import LocalGenerator
from ragsys.generate.repeats import repeating
from ragsys.generate.watch import TextWatch
from ragsys.models import ModelLoadError
from tests.fixtures.generators import BACKENDS, HITS, QUESTION, generator_config


def _runs(ids: Sequence[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


@given(st.lists(st.integers(0, 3), max_size=14), st.integers(1, 5))
def test_a_token_is_banned_exactly_when_it_would_repeat_a_run(ids: list[int], n: int) -> None:
    banned = repeating(ids, n)
    for token in range(5):
        again = tuple([*ids, token][-n:]) in _runs(ids, n) if len(ids) + 1 >= n else False
        assert (token in banned) == again


def test_off_and_short_answers_ban_nothing() -> None:
    assert repeating([1, 1, 1, 1], 0) == set()
    assert repeating([1, 2], 3) == set()
    assert repeating([7, 8, 9], 1) == {7, 8, 9}


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """GGUF exports of the tiny model go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGSYS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_looping_model_never_repeats_a_run_on_either_backend(tiny_lm_path: Path, backend: str) -> None:
    """At init scale the tiny Llama's greedy answer repeats one token; with the ban on, the real
    decoding loop (transformers' `generate`, ragsys's llama.cpp loop) keeps every 3-token run of
    the answer unique, while the prompt, which repeats runs of its own, constrains nothing."""
    if backend == "llama-cpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install builds it)")
    try:
        gen = generator_config(model=str(tiny_lm_path), backend=backend, max_new_tokens=40).build()
    except ModelLoadError as e:
        pytest.skip(str(e))
    assert isinstance(gen, LocalGenerator)

    def new_ids(n: int) -> list[int]:
        config = gen.config.model_copy(update={"no_repeat_ngram": n, "stop": ()})
        prompt = gen.prompt(QUESTION, HITS)
        watch = TextWatch(gen.tokenizer, len(prompt.ids), (), no_repeat_ngram=n)
        return gen.decoder.run(prompt.ids, watch, config)

    free = new_ids(0)
    assert len(set(_runs(free, 3))) < len(_runs(free, 3))  # the model loops
    banned = new_ids(3)
    assert len(set(_runs(banned, 3))) == len(_runs(banned, 3))
    assert banned[:2] == free[:2]  # the ban changes nothing until a run would repeat
