from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import ragsys.retrieve.bm25 as bm25
from ragsys.retrieve.bm25 import BM25Config, BM25Retriever, BM25Scorer
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.bm25_search import Backend, top_k_rows
from ragsys.retrieve.bm25_variants import idf_lucene, idf_okapi, tf_lucene
from ragsys.retrieve.tokenize import Tokenizer, TokenizerConfig
from ragsys.types import Chunk
from tests.factories import make_chunk

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
PLAIN = TokenizerConfig(stopwords="none", stemmer="none", min_token_len=1)
VARIANTS = ("okapi", "lucene", "bm25+")
BACKENDS = ("numba", "numpy")


def synthetic_corpus(n_docs: int = 200, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Zipfian words: the commonest appear in most docs, so okapi's negative-idf floor is hit."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(60)]
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    docs = [[words[i] for i in rng.choice(len(words), rng.integers(1, 40), p=p)] for _ in range(n_docs)]
    queries = [[words[i] for i in rng.choice(len(words), rng.integers(1, 6), p=p)] for _ in range(30)]
    queries += [["w0", "w7", "w7", "w30"], ["w3", "not-in-corpus"]]  # duplicates and an unknown
    return docs, queries


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[str]], list[list[str]]]:
    return synthetic_corpus()


@pytest.fixture(scope="module")
def scifact() -> tuple[list[list[str]], list[list[str]]]:
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {SCIFACT} (see shared/data/README)")
    tokenizer = Tokenizer(PLAIN)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(300), f, strict=False)]
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(40), f, strict=False)]
    return tokenizer.tokenize_many(d["title"] + " " + d["text"] for d in docs), tokenizer.tokenize_many(
        queries
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba is not installed: only the numpy backend can run")
    chosen: Backend = request.param
    return chosen


def scorer(docs: list[list[str]], backend: Backend = "auto", **fields: object) -> BM25Scorer:
    return BM25Config.model_validate(fields).build_scorer(BM25Index.build(docs), backend)


# --- parity with the reference implementations ---------------------------------------------


def assert_okapi_matches_rank_bm25(docs: list[list[str]], queries: list[list[str]]) -> None:
    from rank_bm25 import BM25Okapi

    ours = scorer(docs, variant="okapi", k1=1.5, b=0.75, epsilon=0.25)
    reference = BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0.25)
    for q in queries:
        np.testing.assert_allclose(ours.get_scores(q), reference.get_scores(q), rtol=1e-6, atol=0)


def assert_lucene_matches_bm25s(docs: list[list[str]], queries: list[list[str]]) -> None:
    import bm25s

    ours = scorer(docs, variant="lucene", k1=1.2, b=0.75)
    reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75, dtype="float64")
    reference.index(docs, show_progress=False)
    for q in queries:
        known = [t for t in q if t in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(docs))
        np.testing.assert_allclose(ours.get_scores(q), expected, rtol=1e-6, atol=0)


def test_synthetic_corpus_has_negative_okapi_idfs(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    """Guards the parity test below: it must exercise rank_bm25's epsilon floor."""
    df = np.diff(BM25Index.build(corpus[0]).tf.indptr).astype(np.float64)
    assert (np.log(len(corpus[0]) - df + 0.5) - np.log(df + 0.5) < 0).any()


def test_okapi_matches_rank_bm25_on_synthetic(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_okapi_matches_rank_bm25(*corpus)


def test_okapi_matches_rank_bm25_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_okapi_matches_rank_bm25(*scifact)


def test_bm25plus_matches_rank_bm25(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    from rank_bm25 import BM25Plus

    docs, queries = corpus
    ours = scorer(docs, variant="bm25+", k1=1.3, b=0.6, delta=0.8)
    reference = BM25Plus(docs, k1=1.3, b=0.6, delta=0.8)
    for q in queries:
        np.testing.assert_allclose(ours.get_scores(q), reference.get_scores(q), rtol=1e-6, atol=0)


def test_lucene_matches_bm25s_on_synthetic(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_lucene_matches_bm25s(*corpus)


def test_lucene_matches_bm25s_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    assert_lucene_matches_bm25s(*scifact)


def test_variant_terms_at_known_values() -> None:
    one = np.array([1.0])
    assert idf_lucene(one, 1, 0.0)[0] == pytest.approx(math.log(1 + 0.5 / 1.5))
    assert tf_lucene(one, one, 1.2, 0.0)[0] == pytest.approx(1 / 2.2)
    # df 3 of 4 docs: raw idf log(1.5/3.5) < 0 is floored to epsilon * mean raw idf
    raw = np.log(np.array([3.5, 1.5]) / np.array([1.5, 3.5]))
    assert idf_okapi(np.array([1.0, 3.0]), 4, 0.5)[1] == pytest.approx(0.5 * raw.mean())


# --- search semantics ---------------------------------------------------------------------


def brute_force(scores: np.ndarray, k: int) -> list[int]:
    """Reference order: positive scores only, score desc, then row asc."""
    return sorted((r for r in range(len(scores)) if scores[r] > 0), key=lambda r: (-scores[r], r))[:k]


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


# --- backends -----------------------------------------------------------------------------


def tie_heavy_corpus(n_words: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Docs of 1-3 tokens: most scores tie, and a query's terms reach the same rows in
    different orders, which is what the kernel's heap must still rank by row. 6 words make
    each query's postings cover most docs (the kernel scans all rows), 300 words few (it
    revisits only the postings)."""
    rng = np.random.default_rng(seed)
    words = [f"v{i}" for i in range(n_words)]
    docs = [[words[i] for i in rng.integers(0, n_words, rng.integers(1, 4))] for _ in range(300)]
    queries = [[words[i] for i in rng.integers(0, n_words, rng.integers(1, 5))] for _ in range(40)]
    return docs, queries + [["v1", "unknown", "v1"]]


def covered(docs: list[list[str]], queries: list[list[str]]) -> list[float]:
    """Per query, its postings (with repeats) over the number of docs."""
    index = BM25Index.build(docs)
    df = np.diff(index.tf.indptr)
    return [sum(int(df[index.vocab[t]]) for t in q if t in index.vocab) / len(docs) for q in queries]


CORPORA: dict[str, Callable[[], tuple[list[list[str]], list[list[str]]]]] = {
    "zipf": synthetic_corpus,
    "dense": lambda: tie_heavy_corpus(6),
    "sparse": lambda: tie_heavy_corpus(300),
}


def test_kernel_corpora_cover_both_selection_paths() -> None:
    """Guards the test below: the kernel scans every row when a query's postings exceed half
    the docs, and revisits only the postings otherwise; both paths must be compared."""
    fractions = [f for make in CORPORA.values() for f in covered(*make())]
    assert any(f > 0.5 for f in fractions) and any(0 < f <= 0.5 for f in fractions)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("corpus_name", CORPORA)
def test_numba_and_numpy_backends_agree_exactly(variant: str, corpus_name: str) -> None:
    pytest.importorskip("numba", reason="numba is not installed: nothing to compare")
    docs, queries = CORPORA[corpus_name]()
    index = BM25Index.build(docs)
    config = BM25Config.model_validate({"variant": variant})
    jit, ref = config.build_scorer(index, "numba"), config.build_scorer(index, "numpy")
    assert (jit.backend, ref.backend) == ("numba", "numpy")
    for k in (1, 3, 10, 100, len(docs) + 1):
        for got, want in zip(jit.search_many(queries, k), ref.search_many(queries, k), strict=True):
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])  # same sums in the same order


def test_numba_backend_matches_numpy_on_scifact(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    pytest.importorskip("numba", reason="numba is not installed: nothing to compare")
    docs, queries = scifact
    index = BM25Index.build(docs)
    for variant in VARIANTS:
        config = BM25Config.model_validate({"variant": variant})
        jit, ref = config.build_scorer(index, "numba"), config.build_scorer(index, "numpy")
        for got, want in zip(jit.search_many(queries, 10), ref.search_many(queries, 10), strict=True):
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_auto_falls_back_to_numpy_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ragsys.retrieve.bm25_numba", None)  # its import now fails
    index = BM25Index.build([["a", "b"], ["b"]])
    assert BM25Config().build_scorer(index).backend == "numpy"
    with pytest.raises(ImportError, match="pip install numba"):
        BM25Config().build_scorer(index, "numba")


def test_importing_bm25_does_not_import_numba() -> None:
    code = "import sys, ragsys.retrieve.bm25; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", range(12))
def test_top_k_rows_matches_brute_force_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 6)), int(rng.integers(1, 3000))
    scores = rng.integers(-1, 6, (n_rows, n_cols)).astype(np.float64)  # ties, zeros, negatives
    for k in (1, 3, 10, 100, n_cols + 1):
        for row, (values, cols) in zip(scores, top_k_rows(scores, k), strict=True):
            assert cols.tolist() == brute_force(row, k)
            np.testing.assert_array_equal(values, row[cols])


# --- index storage ------------------------------------------------------------------------


def test_index_counts_terms_per_doc() -> None:
    index = BM25Index.build([["a", "b", "a"], [], ["b"]])
    assert index.num_docs == 3
    assert index.doc_lengths.tolist() == [3, 0, 1]
    assert index.tf.toarray().tolist() == [[2, 0, 0], [1, 0, 1]]  # rows: a, b


def test_save_load_round_trip(tmp_path: Path, corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    docs, queries = corpus
    index = BM25Index.build(docs)
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert dict(loaded.vocab) == dict(index.vocab)
    np.testing.assert_array_equal(loaded.doc_lengths, index.doc_lengths)
    assert (loaded.tf != index.tf).nnz == 0
    with np.load(tmp_path / "bm25" / "bm25_index.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    before, after = BM25Config().build_scorer(index), BM25Config().build_scorer(loaded)
    for q in queries:
        np.testing.assert_array_equal(before.get_scores(q), after.get_scores(q))


def test_load_rejects_another_format(tmp_path: Path) -> None:
    BM25Index.build([["a"]]).save(tmp_path)
    (tmp_path / "bm25_vocab.json").write_text(json.dumps({"format": 99, "terms": ["a"]}))
    with pytest.raises(ValueError, match="rebuild"):
        BM25Index.load(tmp_path)


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


def test_load_rejects_mismatched_vocabulary(tmp_path: Path) -> None:
    BM25Index.build([["a", "b"]]).save(tmp_path)
    (tmp_path / "bm25_vocab.json").write_text(json.dumps({"format": 1, "terms": ["a"]}))
    with pytest.raises(ValueError, match="rebuild"):
        BM25Index.load(tmp_path)
