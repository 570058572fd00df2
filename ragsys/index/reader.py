"""Opening an index for reading: the current generation, its store and structures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragsys.index.build import GENERATIONS
from ragsys.index.errors import IndexFormatError, MissingRepresentationError
from ragsys.index.filters import Filters, accepts
from ragsys.index.lease import Lease, take_lease
from ragsys.index.manifest import DenseRep, Manifest, read_manifest
from ragsys.index.reps import dense_key, sparse_key
from ragsys.index.store import ChunkStore
from ragsys.index.writer import STORE
from ragsys.models import model_fingerprint
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.dense import DenseConfig, VectorIndex
from ragsys.retrieve.tokenize import TokenizerConfig
from ragsys.types import Chunk


class Index:
    """A read-only view of one generation; a concurrent `ragsys index` never disturbs it.

    `open` takes a lease on the generation (`ragsys.index.lease`): a writer does not remove it
    until `close` (or the process ends), however many newer generations are switched in.

    Example:
        >>> index = Index.open(Path("my-index"))  # doctest: +SKIP
        >>> index.chunks([0, 1])  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: Manifest, store: ChunkStore, lease: Lease | None = None) -> None:
        self.path, self.manifest, self.store, self._lease = path, manifest, store, lease

    @classmethod
    def open(cls, path: Path) -> Index:
        """The generation the manifest names now. A writer may switch and remove it between
        reading the manifest and taking the lease; then the manifest is read again."""
        seen: str | None = None
        while True:
            manifest = read_manifest(path)
            gen = path / GENERATIONS / manifest.generation
            lease = take_lease(gen)
            if lease is not None and (gen / STORE).exists():
                return cls(path, manifest, ChunkStore.open_readonly(gen / STORE), lease)
            if lease is not None:
                lease.release()
            if manifest.generation == seen:  # named twice and still not there: not a race
                raise IndexFormatError(path, f"generation {manifest.generation} is missing; re-index")
            seen = manifest.generation

    @property
    def generation_dir(self) -> Path:
        return self.path / GENERATIONS / self.manifest.generation

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        return self.store.chunks(rows)

    def bm25(self, tokenizer: TokenizerConfig) -> BM25Index:
        key = sparse_key(tokenizer)
        if key not in {r.key for r in self.manifest.sparse}:
            raise MissingRepresentationError(
                self.path, "this index holds no BM25 structure for this tokenizer; "
                "re-index with the same --pipeline you search with",
            )  # fmt: skip
        return BM25Index.load(self.generation_dir / "bm25" / key)

    def dense_rep(self, config: DenseConfig) -> DenseRep:
        key = dense_key(config, model_fingerprint(config.model))
        for rep in self.manifest.dense:
            if rep.key == key:
                return rep
        raise MissingRepresentationError(
            self.path, f"this index holds no vectors for model {config.model!r} with these settings; "
            "re-index with the same --pipeline you search with",
        )  # fmt: skip

    def vectors(self, config: DenseConfig) -> VectorIndex:
        rep = self.dense_rep(config)
        return VectorIndex.load(self.generation_dir / "dense" / rep.key)

    def document_metadata(self) -> dict[str, dict[str, str]]:
        """Every document's metadata fields (`ragsys.index.metadata`), by document id."""
        return {d: dict(e.meta) for d, e in self.manifest.documents.items()}

    def scope(self, filters: Filters) -> Scope:
        """The documents that pass `filters` and their chunks' rows (`ragsys.index.filters`)."""
        docs = frozenset(d for d, e in self.manifest.documents.items() if accepts(e.meta, d, filters))
        known = [e for d, e in self.manifest.documents.items() if d in docs and e.first_row >= 0]
        rows = [np.arange(e.first_row, e.first_row + e.chunks, dtype=np.int64) for e in known]
        older = sorted(d for d, e in self.manifest.documents.items() if d in docs and e.first_row < 0)
        if older:  # an index written before rows were recorded: ask the store
            rows.append(np.asarray(self.store.rows_of_docs(older), dtype=np.int64))
        joined = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
        return Scope(docs=docs, rows=joined)

    def close(self) -> None:
        """Closes the chunk store and gives the generation's lease back (idempotent)."""
        self.store.close()
        if self._lease is not None:
            self._lease.release()


@dataclass(frozen=True)
class Scope:
    """Where a filtered search may look: document ids and the chunk rows they hold (sorted)."""

    docs: frozenset[str]
    rows: npt.NDArray[np.int64]
