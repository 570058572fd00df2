"""BM25 scoring and search semantics on every backend, the config, and the retriever."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

import ragsys.retrieve.bm25 as bm25
from ragsys.retrieve.bm25 import BM25Config, BM25Retriever
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.bm25_search import Backend
from ragsys.retrieve.tokenize import Tokenizer
from ragsys.types import Chunk
from tests.fixtures.bm25 import PLAIN, VARIANTS, brute_force, scorer
from tests.fixtures.factories import make_chunk

BACKENDS = ("numba", "numpy")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba is not installed: only the numpy backend can run")
    chosen: Backend = request.param
    return chosen


# --- search semantics ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 7, 1000])
def test_search_is_sorted_get_scores(
    corpus: tuple[list[list[str]], list[list[str]]], variant: str, k: int, backend: Backend
) -> None:
    docs, queries = corpus
    s = scorer(docs, backend, variant=variant)
    absent = 0.0
    for q in queries:
        scores, rows = s.search(q, k)
        full = s.get_scores(q)
        if variant == "bm25+":  # every doc gets idf * delta per known term; hits need a real match
            absent = float(np.min(full))
            assert rows.tolist() == brute_force(full - absent, k)
        else:
            assert rows.tolist() == brute_force(full, k)
        assert rows.dtype == np.int64
        np.testing.assert_allclose(scores, full[rows], rtol=1e-12)


def test_search_many_equals_search_across_blocks(
    corpus: tuple[list[list[str]], list[list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, queries = corpus
    s = scorer(docs, "numpy")
    monkeypatch.setattr(bm25, "_BLOCK_SCORES", 3 * len(docs))  # 3 queries per block
    batched = s.search_many(queries, 5)
    assert len(batched) == len(queries)
    for (scores, rows), q in zip(batched, queries, strict=True):
        single = s.search(q, 5)
        np.testing.assert_array_equal(rows, single[1])
        np.testing.assert_array_equal(scores, single[0])


def test_unknown_terms_are_ignored(corpus: tuple[list[list[str]], list[list[str]]], backend: Backend) -> None:
    s = scorer(corpus[0], backend)
    np.testing.assert_array_equal(s.get_scores(["w2", "zzz"]), s.get_scores(["w2"]))
    assert not s.get_scores(["zzz", "yyy"]).any()
    assert s.search(["zzz"], 10)[1].size == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_empty_query_scores_zero_and_finds_nothing(
    corpus: tuple[list[list[str]], list[list[str]]], variant: str, backend: Backend
) -> None:
    s = scorer(corpus[0], backend, variant=variant)
    np.testing.assert_array_equal(s.get_scores([]), np.zeros(len(corpus[0])))
    scores, rows = s.search([], 10)
    assert scores.size == 0 and rows.size == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_duplicate_tokens_count_each_time(
    corpus: tuple[list[list[str]], list[list[str]]], variant: str
) -> None:
    s = scorer(corpus[0], variant=variant)
    np.testing.assert_allclose(s.get_scores(["w5", "w5"]), 2 * s.get_scores(["w5"]), rtol=1e-12)


def test_k_larger_than_corpus_returns_every_match(backend: Backend) -> None:
    s = scorer([["a", "b"], ["b"], ["c"]], backend)
    scores, rows = s.search(["b", "a"], k=50)
    assert rows.tolist() == [0, 1]
    assert scores[0] > scores[1] > 0


def test_k_zero_and_negative(backend: Backend) -> None:
    s = scorer([["a"], ["b"]], backend)
    assert s.search(["a"], 0)[1].size == 0
    with pytest.raises(ValueError, match="k must be"):
        s.search(["a"], -1)


def test_ties_break_by_ascending_row(backend: Backend) -> None:
    docs = [["x", "y"], ["a", "b"], ["x", "y"], ["c", "d"], ["x", "y"], ["x", "y"]]
    scores, rows = scorer(docs, backend).search(["x"], k=3)
    assert rows.tolist() == [0, 2, 4]
    assert len(set(scores.tolist())) == 1


def test_one_index_serves_any_parameters(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    index = BM25Index.build(corpus[0])
    q = ["w1", "w9"]
    a = BM25Config(k1=0.9, b=0.4).build_scorer(index).get_scores(q)
    b = BM25Config(k1=2.0, b=1.0).build_scorer(index).get_scores(q)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, scorer(corpus[0], k1=0.9, b=0.4).get_scores(q))


def test_empty_corpus_searches_to_nothing(backend: Backend) -> None:
    index = BM25Index.build([])
    assert index.num_docs == 0
    s = BM25Config().build_scorer(index, backend)
    assert s.get_scores(["a"]).shape == (0,)
    assert s.search(["a"], 5)[1].size == 0
    assert s.search_many([], 5) == []


def test_importing_bm25_does_not_import_numba() -> None:
    code = "import sys, ragsys.retrieve.bm25; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- config and retriever -----------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"b": 1.5}, {"k1": -1}, {"variant": "bm25l"}, {"kind": "dense"}])
def test_bad_config_fails_early(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BM25Config.model_validate(fields)


def test_config_round_trips_through_json() -> None:
    config = BM25Config(variant="bm25+", k1=0.9, b=0.4, delta=1.0, tokenizer=PLAIN)
    assert BM25Config.model_validate_json(config.model_dump_json()) == config


def fake_chunks(texts: list[str]) -> list[Chunk]:
    return [make_chunk(f"c{i}", t, doc_id=f"d{i}", source="s.txt", hash=str(i)) for i, t in enumerate(texts)]


def test_retriever_returns_hits_from_the_chunk_lookup() -> None:
    texts = ["Aspirin lowers stroke risk.", "Statins lower cholesterol.", "Stroke units save lives."]
    chunks = fake_chunks(texts)
    config = BM25Config()
    tokenizer = Tokenizer(config.tokenizer)
    scorer_ = config.build_scorer(BM25Index.build(tokenizer.tokenize_many(texts)))
    retriever = BM25Retriever(config, scorer_, tokenizer, lambda rows: [chunks[r] for r in rows])
    hits = retriever.retrieve("Does aspirin prevent strokes?", k=5)
    assert [h.chunk.id for h in hits] == ["c0", "c2"]
    assert all(h.source == "bm25" for h in hits)
    assert hits[0].score > hits[1].score > 0
    assert retriever.retrieve_many(["Does aspirin prevent strokes?", "cholesterol"], k=5) == [
        hits,
        retriever.retrieve("cholesterol", k=5),
    ]


def test_retriever_rejects_a_tokenizer_from_another_config() -> None:
    config = BM25Config()
    s = config.build_scorer(BM25Index.build([["a"]]))
    with pytest.raises(ValueError, match="Tokenizer"):
        BM25Retriever(config, s, Tokenizer(PLAIN), lambda rows: [])
