"""`GenerationWriter` with the cluster's chunks and vectors: the same generation, computed remotely.

The local writer chunks each new document and embeds each chunk text its embedding cache
lacks. This one first has the cluster do both (documents not chunked where they were
extracted are chunked in batches; missing vectors are embedded by Ray Data actors and
committed to the cache batch by batch), then runs the local writer unchanged: it finds the
chunks ready and every vector cached, and builds the store, BM25 over the whole corpus and
the FAISS index exactly as a local run does. Documents kept from the previous generation
and re-chunked because the chunking changed are chunked here, on the driver.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

from ragsys.distributed.cluster import ClusterError
from ragsys.distributed.embed import embed_on_ray
from ragsys.distributed.extract import chunk_on_ray
from ragsys.index.manifest import DenseRep, Manifest
from ragsys.index.plan import Plan
from ragsys.index.reps import dense_config_for
from ragsys.index.writer import EMBED_CALL, GenerationWriter
from ragsys.types import Chunk, Document

CHUNK_BATCH = 64  # ready documents per chunking task


class Cluster(Protocol):
    """What the writer needs of its `RayExecutor`: Ray, the chunks made so far, the bound."""

    chunks: dict[str, list[Chunk]]

    @property
    def ray(self) -> ModuleType: ...

    @property
    def bound(self) -> int: ...


class RayGenerationWriter(GenerationWriter):
    def __init__(self, executor: Cluster, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ex = executor

    def write(self, plan: Plan, new_docs: list[Document]) -> Manifest:
        rest = [d for d in new_docs if d.id not in self._ex.chunks]
        if rest:
            self.rep.stage("chunk on cluster", len(rest))
            ray, chunking = self._ex.ray, self.spec.chunking
            for doc, chunks in chunk_on_ray(ray, rest, chunking, batch=CHUNK_BATCH, bound=self._ex.bound):
                self._ex.chunks[doc.id] = chunks
                self.rep.advance("chunk on cluster")
        return super().write(plan, new_docs)

    def _chunk(self, doc: Document) -> list[Chunk]:
        chunks = self._ex.chunks.pop(doc.id, None)  # popped: each is written once, then freed
        return chunks if chunks is not None else super()._chunk(doc)

    def _write_dense(self, drep: DenseRep, chunks: list[Chunk]) -> DenseRep:
        missing = self._missing(drep, chunks)
        name = f"embed {drep.model}"
        backend = self._embed(drep, missing, name) if missing else None
        out = super()._write_dense(drep, chunks)  # every vector is cached now: nothing to embed
        if backend is None:
            return out
        self.rep.stage(name, len(missing))  # the local writer reset the bar to 0 of 0: show the work done
        self.rep.advance(name, len(missing))
        return out.model_copy(update={"backend": backend})

    def _missing(self, drep: DenseRep, chunks: Sequence[Chunk]) -> list[tuple[str, str]]:
        have = self.cache.get_many(drep.key, [c.hash for c in chunks])
        texts = {c.hash: c.text for c in chunks if c.hash not in have}
        return sorted(texts.items(), key=lambda ht: (-len(ht[1]), ht[0]))  # as the local writer sorts

    def _embed(self, drep: DenseRep, missing: list[tuple[str, str]], name: str) -> str:
        """Embeds on the cluster into the cache; returns the backend the actors ran."""
        self.rep.stage(name, len(missing))
        t = time.monotonic()
        backend = ""
        batches = embed_on_ray(
            dense_config_for(self.spec, drep), drep.fingerprint, missing,
            batch_size=EMBED_CALL, max_actors=self._ex.bound,
        )  # fmt: skip
        for part in batches:
            if backend and part.backend != backend:  # never mix int8 / bf16 / fp32 vectors in one set
                raise ClusterError(
                    f"Ray workers embed {drep.model!r} with different runtimes ({backend} and "
                    f"{part.backend}); install the same extras (ragsys[fast]) on every node, or set "
                    "the retriever's backend explicitly"
                )
            backend = part.backend
            self.cache.put_many(drep.key, part.hashes, part.vectors)
            self.rep.advance(name, len(part.hashes))
            self.fault("embed")
        self._lap("embed", t)  # includes the actors' start-up, unlike the local figure
        self.embedded += len(missing)
        return backend
