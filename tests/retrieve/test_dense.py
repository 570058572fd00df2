"""Dense retrieval: the encoder wrapper, the faiss index kinds, and the retriever."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from ragsys.models import load_sentence_transformer
from ragsys.retrieve.dense import (
    INDEX_FILE,
    DenseConfig,
    DenseRetriever,
    SentenceEncoder,
    VectorIndex,
    ivf_lists,
    l2_normalize,
    resolve_kind,
)
from ragsys.types import Chunk
from tests.fixtures.factories import make_chunk

Vectors = npt.NDArray[np.float32]


def _unit(n: int, dim: int, seed: int) -> Vectors:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _chunk(i: int, text: str = "") -> Chunk:
    return make_chunk(f"c{i:03d}", text or f"chunk {i}", doc_id=f"d{i}")


def _recall_at_k(approx: npt.NDArray[np.int64], exact: npt.NDArray[np.int64]) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)]))


# --- config ---------------------------------------------------------------------------------


def test_config_round_trips_and_validates() -> None:
    config = DenseConfig(model="intfloat/e5-small-v2", query_prefix="query: ", index="hnsw")
    assert DenseConfig.model_validate(config.model_dump(mode="json")) == config
    with pytest.raises(ValidationError):
        DenseConfig(batch_size=0)
    with pytest.raises(ValidationError):
        DenseConfig(index="annoy")  # type: ignore[arg-type]


def test_auto_kind_is_exact_up_to_flat_max() -> None:
    config = DenseConfig(flat_max=100)
    assert resolve_kind(100, config) == "flat"
    assert resolve_kind(101, config) == "hnsw"
    assert resolve_kind(10, DenseConfig(index="ivf")) == "ivf"


def test_ivf_lists_scale_with_sqrt_n_and_keep_enough_training_points() -> None:
    assert ivf_lists(1_000_000, DenseConfig()) == 4000
    assert ivf_lists(2000, DenseConfig()) == 2000 // 39  # capped by k-means' points per list
    assert ivf_lists(10, DenseConfig()) == 1


# --- encoder --------------------------------------------------------------------------------


class FakeST:
    """Returns fixed unnormalized vectors and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_embedding_dimension(self) -> int:
        return 2

    def encode(self, texts: list[str], **kwargs: Any) -> Vectors:
        self.calls.append({"texts": texts, **kwargs})
        return np.array([[3.0, 4.0], [0.0, 0.0]][: len(texts)], dtype=np.float64)  # type: ignore[return-value]


def test_encoder_prefixes_normalizes_and_hides_progress() -> None:
    fake = FakeST()
    out = SentenceEncoder(fake, batch_size=7, prefix="passage: ").encode(["a", "b"])  # type: ignore[arg-type]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])  # zero vector stays zero, no NaN
    call = fake.calls[0]
    assert call["texts"] == ["passage: a", "passage: b"]
    assert call["batch_size"] == 7 and call["show_progress_bar"] is False


def test_encoder_on_no_texts_returns_an_empty_matrix() -> None:
    fake = FakeST()
    assert SentenceEncoder(fake, 4).encode([]).shape == (0, 2)  # type: ignore[arg-type]
    assert fake.calls == []


def test_encoder_with_a_tiny_model_gives_unit_vectors(tiny_st_path: Path) -> None:
    encoder = SentenceEncoder(load_sentence_transformer(str(tiny_st_path), device="cpu"), 2)
    vectors = encoder.encode(["aspirin", "net income rose", "the answer is yes"])
    assert vectors.shape == (3, encoder.dim) == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


# --- index ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> tuple[Vectors, Vectors]:
    return _unit(3000, 32, seed=0), _unit(50, 32, seed=1)


def test_flat_index_is_exact(corpus: tuple[Vectors, Vectors]) -> None:
    base, queries = corpus
    index = VectorIndex.build(base, DenseConfig())
    scores, rows = index.search(queries, 10)
    assert index.kind == "flat" and len(index) == 3000 and index.dim == 32
    truth = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(rows, truth)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ base.T, truth, axis=1), rtol=1e-5)


def test_hnsw_recalls_the_exact_neighbours(corpus: tuple[Vectors, Vectors]) -> None:
    base, queries = corpus
    exact = VectorIndex.build(base, DenseConfig()).search(queries, 10)[1]
    hnsw = VectorIndex.build(base, DenseConfig(index="hnsw"))
    assert hnsw.kind == "hnsw"
    assert _recall_at_k(hnsw.search(queries, 10)[1], exact) >= 0.9


def test_ivf_recall_grows_with_nprobe_and_is_exact_when_probing_every_list(
    corpus: tuple[Vectors, Vectors],
) -> None:
    base, queries = corpus
    exact = VectorIndex.build(base, DenseConfig()).search(queries, 10)[1]
    lists = ivf_lists(len(base), DenseConfig())
    recalls = [
        _recall_at_k(
            VectorIndex.build(base, DenseConfig(index="ivf", ivf_nprobe=p)).search(queries, 10)[1], exact
        )
        for p in (1, 16, lists)
    ]
    assert recalls[0] < recalls[1] < recalls[2] == 1.0
    assert recalls[1] >= 0.7  # random 32-d vectors are a hard case for a coarse quantizer


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_gives_identical_results(
    corpus: tuple[Vectors, Vectors], tmp_path: Path, kind: str
) -> None:
    base, queries = corpus
    index = VectorIndex.build(base[:1000], DenseConfig(index=kind))  # type: ignore[arg-type]
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert (loaded.kind, len(loaded), loaded.dim) == (kind, 1000, 32)
    assert (tmp_path / INDEX_FILE).exists() == (kind != "flat")  # a flat index is rebuilt from vectors
    for a, b in zip(index.search(queries, 5), loaded.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_rebuilds_a_missing_faiss_file_from_the_vectors(
    corpus: tuple[Vectors, Vectors], tmp_path: Path
) -> None:
    base, queries = corpus
    VectorIndex.build(base[:500], DenseConfig(index="hnsw")).save(tmp_path)
    (tmp_path / INDEX_FILE).unlink()
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == "hnsw" and len(loaded) == 500


def test_ivf_with_too_few_vectors_falls_back_to_flat() -> None:
    assert VectorIndex.build(_unit(20, 8, 0), DenseConfig(index="ivf")).kind == "flat"


def test_search_pads_with_minus_one_and_handles_k_zero() -> None:
    index = VectorIndex.build(_unit(3, 8, 0), DenseConfig())
    scores, rows = index.search(_unit(2, 8, 1), 5)
    assert rows.shape == (2, 5) and rows.dtype == np.int64 and scores.dtype == np.float32
    assert (rows[:, 3:] == -1).all() and sorted(rows[0, :3]) == [0, 1, 2]
    assert index.search(_unit(2, 8, 1), 0)[1].shape == (2, 0)


def test_empty_index_finds_nothing() -> None:
    index = VectorIndex.build(np.zeros((0, 8), np.float32), DenseConfig())
    assert len(index) == 0 and (index.search(_unit(1, 8, 0), 3)[1] == -1).all()


def test_search_rejects_vectors_from_another_model() -> None:
    index = VectorIndex.build(_unit(5, 8, 0), DenseConfig())
    with pytest.raises(ValueError, match="re-index"):
        index.search(_unit(1, 16, 0), 3)
    with pytest.raises(ValueError, match="2-d"):
        index.search(_unit(1, 8, 0)[0], 3)


# --- retriever ------------------------------------------------------------------------------


class TableEncoder:
    """Maps known texts to fixed vectors, so expected rankings are exact."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return l2_normalize(np.array([self.table[t] for t in texts], dtype=np.float32))


class ChunkStore:
    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks, self.lookups = chunks, []  # type: list[Chunk], list[list[int]]

    def __call__(self, rows: Sequence[int]) -> list[Chunk]:
        self.lookups.append(list(rows))
        return [self.chunks[r] for r in rows]


def _fixture_retriever() -> tuple[DenseRetriever, TableEncoder, ChunkStore]:
    # rows 1 and 2 are identical vectors: a tie the retriever must break by chunk id
    base = l2_normalize(np.array([[1, 0, 0], [0.6, 0.8, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32))
    store = ChunkStore([_chunk(0), _chunk(9), _chunk(5), _chunk(3)])
    encoder = TableEncoder({"x": [1, 0, 0], "y": [0, 1, 0]})
    return (
        DenseRetriever(DenseConfig(), encoder, VectorIndex.build(base, DenseConfig()), store),
        encoder,
        store,
    )


def test_retrieve_ranks_by_cosine_and_breaks_ties_by_chunk_id() -> None:
    retriever, _, _ = _fixture_retriever()
    hits = retriever.retrieve("y", k=3)
    assert [h.chunk.id for h in hits] == ["c005", "c009", "c000"]
    assert [h.score for h in hits] == pytest.approx([0.8, 0.8, 0.0], abs=1e-6)
    assert {h.source for h in hits} == {"dense"}


def test_retrieve_drops_padding_rows_when_k_exceeds_the_corpus() -> None:
    retriever, _, _ = _fixture_retriever()
    assert len(retriever.retrieve("x", k=10)) == 4


def test_retrieve_many_batches_encoding_and_lookup() -> None:
    retriever, encoder, store = _fixture_retriever()
    many = retriever.retrieve_many(["x", "y"], k=2)
    assert encoder.calls == 1 and len(store.lookups) == 1
    assert store.lookups[0] == sorted(set(store.lookups[0]))
    assert many == [retriever.retrieve("x", k=2), retriever.retrieve("y", k=2)]
    assert retriever.retrieve_many([], k=2) == []


def test_dense_retriever_with_a_tiny_model_finds_the_exact_text(tiny_st_path: Path) -> None:
    texts = [
        "aspirin reduces heart attack risk",
        "revenue grew ten percent",
        "paris is the capital of france",
    ]
    chunks = [_chunk(i, t) for i, t in enumerate(texts)]
    model = load_sentence_transformer(str(tiny_st_path), device="cpu")
    index = VectorIndex.build(SentenceEncoder(model, 8, "passage: ").encode(texts), DenseConfig())
    retriever = DenseRetriever(
        DenseConfig(), SentenceEncoder(model, 8, "passage: "), index, ChunkStore(chunks)
    )
    for i, text in enumerate(texts):
        top = retriever.retrieve(text, k=3)[0]
        assert top.chunk.id == chunks[i].id and top.score == pytest.approx(1.0, abs=1e-5)


def test_a_full_disk_while_writing_the_faiss_file_raises_instead_of_cutting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins
    import errno

    rng = np.random.default_rng(0)
    index = VectorIndex.build(rng.standard_normal((500, 16)).astype(np.float32), DenseConfig(index="hnsw"))
    real_open = builtins.open

    class FullDisk:
        """A file whose writes fail the way a full disk makes them fail."""

        def __init__(self, f: Any) -> None:
            self._f = f

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._f.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        return FullDisk(f) if str(file).endswith("index.faiss") and "w" in mode else f

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError) as raised:
        index.save(tmp_path)
    assert raised.value.errno == errno.ENOSPC
