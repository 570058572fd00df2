"""Dense retrieval: a bi-encoder embeds texts, faiss finds the nearest by inner product.

Vectors are L2-normalized, so inner product is cosine similarity. The index is exact
(`IndexFlatIP`) up to `flat_max` vectors: below a few hundred thousand 384-d vectors a
brute-force scan takes milliseconds and has no recall loss, build time or tuning knobs.
Above it, "auto" picks HNSW (no training step, high recall at `ef_search` >= 64); IVF is
there for memory-bound corpora, where its coarse quantizer costs less than HNSW's graph.

faiss threads: faiss runs OpenMP with `omp_get_max_threads()` threads, which in a
container with a CPU quota can be the host's core count rather than the cores this
process may use; combined with torch's own pool that oversubscribes the CPU. We set
faiss to the CPUs this process is allowed (`sched_getaffinity`), or `RAGSYS_FAISS_THREADS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import Field

from ragsys.encoders.backend import EncoderBackend
from ragsys.protocols import Encoder
from ragsys.types import Chunk, Frozen, Hit

IndexKind = Literal["flat", "hnsw", "ivf"]
Vectors = npt.NDArray[np.float32]
INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
META_FILE = "index.json"
IVF_POINTS_PER_LIST = 39  # faiss warns when k-means has fewer training points per centroid


class VectorSource(Protocol):
    """What a dense retriever reads from an opened index (`ragsys.index.reader.Index` is one)."""

    def vectors(self, config: DenseConfig) -> VectorIndex: ...

    def chunks(self, rows: Sequence[int]) -> list[Chunk]: ...


class DenseConfig(Frozen):
    """A bi-encoder and the faiss index over its passage vectors.

    Example:
        >>> e5 = DenseConfig(model="intfloat/e5-small-v2", query_prefix="query: ", passage_prefix="passage: ")
        >>> e5.index
        'auto'
    """

    kind: Literal["dense"] = "dense"
    model: str = "minilm"
    # The runtime that embeds passages (indexing) and queries (search); ragsys/encoders/backend.py
    # has the measurements behind "auto" (OpenVINO int8 where it runs, else bf16, else fp32).
    backend: EncoderBackend = "auto"
    query_backend: EncoderBackend = "auto"
    # E5 and BGE were trained with these prefixes and lose accuracy without them; MiniLM has none.
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = Field(default=64, ge=1)
    max_seq_length: int | None = Field(default=None, ge=8)
    index: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    flat_max: int = Field(default=200_000, ge=0)
    hnsw_m: int = Field(default=32, ge=4)
    hnsw_ef_search: int = Field(default=128, ge=1)
    ivf_nlist: int | None = Field(default=None, ge=1, description="None: about 4 * sqrt(n)")
    ivf_nprobe: int = Field(default=16, ge=1)

    def build(self, source: VectorSource) -> DenseRetriever:
        """Loads the query encoder and the index's vectors for it (the slow part of opening a pipeline)."""
        vectors = source.vectors(self)
        return DenseRetriever(self, self.build_encoder("query"), vectors, source.chunks)

    def build_encoder(self, role: Literal["query", "passage"]) -> SentenceEncoder:
        """The encoder with the prefix of its role: queries when searching, passages when indexing."""
        from ragsys.encoders import load_encoder

        backend = self.query_backend if role == "query" else self.backend
        model, resolved = load_encoder(self.model, "bi", backend, self.max_seq_length)
        return SentenceEncoder(
            model, self.batch_size, self.query_prefix if role == "query" else self.passage_prefix, resolved
        )


class TextEncoder(Protocol):
    """What `SentenceEncoder` needs of a model: a SentenceTransformer, or ragsys's OpenVINO or bf16 copy."""

    def encode(
        self, texts: list[str], *, batch_size: int, show_progress_bar: bool, convert_to_numpy: bool
    ) -> Any: ...

    def get_embedding_dimension(self) -> int | None: ...


class SentenceEncoder:
    """An `Encoder` over a sentence-transformers model (on any backend) that prepends one fixed prefix.

    One instance per role: the retriever's encoder carries `query_prefix`, the indexer's
    `passage_prefix`. `backend` names the runtime that encodes (reported by index and search).
    """

    def __init__(self, model: TextEncoder, batch_size: int, prefix: str = "", backend: str = "torch") -> None:
        self.model, self.batch_size, self.prefix, self.backend = model, batch_size, prefix, backend

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError("the SentenceTransformer does not report its embedding dimension")
        return dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with single_torch_thread() if len(texts) == 1 and self.backend.startswith("torch") else nullcontext():
            out = self.model.encode(
                [self.prefix + t for t in texts],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return l2_normalize(np.asarray(out, dtype=np.float32))


def l2_normalize(x: Vectors) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), whatever the model's last module is.

    Done here rather than trusting a `Normalize` module, because inner-product search
    equals cosine only on unit vectors, and not every checkpoint ends in one.
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def faiss_threads() -> int:
    env = os.environ.get("RAGSYS_FAISS_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return os.cpu_count() or 1


def resolve_kind(n: int, config: DenseConfig) -> IndexKind:
    if config.index != "auto":
        return config.index
    return "flat" if n <= config.flat_max else "hnsw"


def ivf_lists(n: int, config: DenseConfig) -> int:
    """sqrt-scaling lists (the faiss guideline), capped so k-means has enough points per list."""
    wanted = config.ivf_nlist or round(4 * np.sqrt(max(n, 1)))
    return int(max(1, min(wanted, n // IVF_POINTS_PER_LIST)))


class VectorIndex:
    """Row i of the index is `vectors[i]`: callers map rows to chunks in the same order.

    Example:
        >>> index = VectorIndex.build(np.eye(3, dtype=np.float32), DenseConfig())
        >>> index.search(np.eye(3, dtype=np.float32)[1:2], 1)[1].tolist()
        [[1]]
    """

    def __init__(self, index: faiss.Index, vectors: Vectors, kind: IndexKind, config: DenseConfig) -> None:
        self._index, self._vectors, self.kind, self._config = index, vectors, kind, config

    @classmethod
    def build(cls, vectors: Vectors, config: DenseConfig) -> VectorIndex:
        vectors = _as_matrix(vectors)
        faiss.omp_set_num_threads(faiss_threads())
        n, dim = vectors.shape
        kind = resolve_kind(n, config)
        if kind == "ivf" and n < IVF_POINTS_PER_LIST:
            kind = "flat"  # too few points to train a coarse quantizer; exact search is instant anyway
        return cls(_new_faiss_index(kind, vectors, config), vectors, kind, config)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: Vectors, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scores and rows, both (n, k), best first; rows are -1 where fewer than k exist."""
        queries = _as_matrix(queries)
        if queries.shape[1] != self.dim:
            raise ValueError(
                f"query vectors have dim {queries.shape[1]} but the index holds dim {self.dim}: "
                "the index was built with another model; re-index with this one"
            )
        if k <= 0 or queries.shape[0] == 0:
            return np.zeros((queries.shape[0], 0), np.float32), np.zeros((queries.shape[0], 0), np.int64)
        scores, rows = self._index.search(queries, k, params=self._search_params(k))
        return scores.astype(np.float32), rows.astype(np.int64)

    def search_within(
        self, queries: Vectors, k: int, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """`search` over `rows` only. Exact: the scores of the allowed vectors are computed
        directly (a filter usually keeps a few documents; 100k vectors take milliseconds), so a
        filtered search on an approximate index returns the true top k, never fewer than exist."""
        queries = _as_matrix(queries)
        n = queries.shape[0]
        if k <= 0 or n == 0 or rows.size == 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        subset = np.asarray(self._vectors[rows], dtype=np.float32)
        scores = queries @ subset.T  # (n, len(rows))
        take = min(k, rows.size)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        return np.take_along_axis(scores, best, axis=1).astype(np.float32), rows[best].astype(np.int64)

    def _search_params(self, k: int) -> faiss.SearchParameters | None:
        # Per-call parameters leave the index untouched, so concurrent searches are safe.
        if self.kind == "hnsw":  # HNSW keeps only efSearch candidates: it must be >= k
            hnsw: faiss.SearchParameters = getattr(faiss, "SearchParametersHNSW")()  # noqa: B009 (not in faiss's stub)
            hnsw.efSearch = max(self._config.hnsw_ef_search, k)  # type: ignore[attr-defined]
            return hnsw
        if self.kind == "ivf":
            ivf = faiss.SearchParametersIVF()
            ivf.nprobe = self._config.ivf_nprobe
            return ivf
        return None

    def save(self, dir: Path) -> None:
        """The vectors always (the source of truth); the faiss file only for built structures.

        A flat index is its vectors, so writing it too would double the disk for nothing.
        """
        dir.mkdir(parents=True, exist_ok=True)
        np.save(dir / VECTORS_FILE, self._vectors)
        if self.kind != "flat":
            # Serialized here and written by Python: faiss.write_index ignores errors when it
            # closes its file, so a full disk could silently cut the file's tail; a Python write
            # raises OSError (ENOSPC) on write or close, which the index writer turns into a
            # typed disk-full error with the previous generation intact.
            data = faiss.serialize_index(self._index)
            with open(dir / INDEX_FILE, "wb") as f:
                f.write(data.tobytes())
        meta = {"kind": self.kind, "config": self._config.model_dump(mode="json"), "faiss": faiss.__version__}
        (dir / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, dir: Path, config: DenseConfig | None = None) -> VectorIndex:
        """`config` overrides the saved search settings (ef_search, nprobe) without a rebuild."""
        meta = json.loads((dir / META_FILE).read_text(encoding="utf-8"))
        kind: IndexKind = meta["kind"]
        saved = DenseConfig.model_validate(meta["config"])
        faiss.omp_set_num_threads(faiss_threads())
        vectors = np.load(dir / VECTORS_FILE, mmap_mode="r")  # paged in only if re-saved
        if kind == "flat" or not (dir / INDEX_FILE).exists():
            index = _new_faiss_index(kind, np.ascontiguousarray(vectors, dtype=np.float32), saved)
        else:
            index = faiss.read_index(str(dir / INDEX_FILE))
        return cls(index, vectors, kind, config or saved)


def _as_matrix(x: Vectors) -> Vectors:
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d (n, dim) array of vectors, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _new_faiss_index(kind: IndexKind, vectors: Vectors, config: DenseConfig) -> faiss.Index:
    n, dim = vectors.shape
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * config.hnsw_m)  # faiss's 40 is low for M=32
    else:
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dim), dim, ivf_lists(n, config), faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = 1234  # k-means seeds fixed: the same vectors give the same lists
        index.train(vectors)
    if n:
        index.add(vectors)
    return index


class DenseRetriever:
    """Embeds queries (the encoder carries `query_prefix`) and returns the nearest chunks.

    Example:
        >>> retriever = DenseRetriever(config, SentenceEncoder(model, 64, config.query_prefix),
        ...                            VectorIndex.load(path), store.chunks)  # doctest: +SKIP
        >>> retriever.retrieve("does aspirin prevent stroke?", k=5)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: DenseConfig,
        encoder: Encoder,
        index: VectorIndex,
        chunks: Callable[[Sequence[int]], list[Chunk]],
    ) -> None:
        self.config, self._encoder, self._index, self._chunks = config, encoder, index, chunks

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(
        self, queries: Sequence[str], k: int = 10, rows: npt.NDArray[np.int64] | None = None
    ) -> list[list[Hit]]:
        """One encoder call, one search and one chunk lookup for all queries; `rows`, when given,
        are the only index rows that may be returned (a metadata filter), chosen before top-k."""
        if not queries:
            return []
        vectors = self._encoder.encode(list(queries))
        scores, rows = (
            self._index.search(vectors, k) if rows is None else self._index.search_within(vectors, k, rows)
        )
        found = [
            [(float(s), int(r)) for s, r in zip(srow, rrow, strict=True) if r >= 0]
            for srow, rrow in zip(scores, rows, strict=True)
        ]
        unique = sorted({r for row in found for _, r in row})
        by_row = dict(zip(unique, self._chunks(unique), strict=True))
        return [_ranked(row, by_row) for row in found]


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """One text on torch: encoded on one thread. A ~20-token forward pass is too small to gain from
    intra-op parallelism, and on a busy 2-core machine the second thread's synchronisation
    cost dominates (measured on SciFact under load: p50 87 ms with 2 threads, 23 ms with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _ranked(row: list[tuple[float, int]], by_row: dict[int, Chunk]) -> list[Hit]:
    hits = [Hit(chunk=by_row[r], score=s, source="dense") for s, r in row]
    return sorted(hits, key=lambda h: (-h.score, h.chunk.id))  # ties break by id: deterministic output
