"""Writes one complete generation directory: chunk store, BM25 structures, vectors."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragsys.chunk.chunker import StructureChunker
from ragsys.fsutil import fsync_tree
from ragsys.index.cache import EmbeddingCache
from ragsys.index.manifest import DenseRep, DocEntry, Manifest
from ragsys.index.metadata import document_metadata
from ragsys.index.plan import Plan
from ragsys.index.reps import dense_config_for
from ragsys.index.spec import IndexSpec
from ragsys.index.store import ChunkStore
from ragsys.progress import Reporter
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.dense import VectorIndex
from ragsys.retrieve.tokenize import Tokenizer, TokenizerConfig
from ragsys.types import Chunk, Document

STORE = "chunks.sqlite"
EMBED_CALL = 256  # texts per encode() call: big enough to keep the encoder's batching efficient


class GenerationWriter:
    def __init__(
        self,
        out: Path,
        prev: Manifest | None,
        prev_dir: Path | None,
        target: Manifest,
        spec: IndexSpec,
        cache: EmbeddingCache,
        reporter: Reporter,
        fault: Callable[[str], None],
        metadata: Sequence[Mapping[str, str]] = (),
    ) -> None:
        self.out, self.prev, self.prev_dir, self.target = out, prev, prev_dir, target
        self.spec, self.cache, self.rep, self.fault = spec, cache, reporter, fault
        self.metadata = metadata  # the user's metadata.jsonl rows
        self._chunker: StructureChunker | None = None
        self.timings: dict[str, float] = {}
        self.embedded = 0  # chunks embedded in this run (cache misses)

    def write(self, plan: Plan, new_docs: list[Document]) -> Manifest:
        self.out.mkdir(parents=True)
        t = time.monotonic()
        store = ChunkStore.create(self.out / STORE)
        try:  # a full disk fails the inserts or the commit: the connection closes either way
            chunks, documents, pages = self._write_store(store, plan, new_docs)
            store.commit()
        finally:
            store.close()
        self.fault("chunk")
        t = self._lap("chunk", t)
        texts = [c.text for c in chunks]
        for srep in self.target.sparse:
            tokenizer = Tokenizer(TokenizerConfig.model_validate(srep.tokenizer))
            BM25Index.build(tokenizer.tokenize_many(texts)).save(self.out / "bm25" / srep.key)
        t = self._lap("bm25", t)
        dense = tuple(self._write_dense(drep, chunks) for drep in self.target.dense)
        t = self._lap("dense", t)
        self.rep.stage("write", 1)
        fsync_tree(self.out)
        self.rep.advance("write")
        self.fault("write")
        self._lap("write", t)
        return self.target.model_copy(
            update={"documents": documents, "pages": pages, "chunks": len(chunks), "dense": dense}
        )

    def _lap(self, stage: str, since: float) -> float:
        now = time.monotonic()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - since, 3)
        return now

    def _write_store(
        self, store: ChunkStore, plan: Plan, new_docs: list[Document]
    ) -> tuple[list[Chunk], dict[str, DocEntry], int]:
        new = {d.id: d for d in new_docs}
        kept = set(self.prev.documents) - set(plan.deleted) - set(new) if self.prev else set()
        prev_store = ChunkStore.open_readonly(self.prev_dir / STORE) if self.prev_dir and kept else None
        same_chunking = self.prev is not None and self.prev.chunking == self.target.chunking
        self.rep.stage("chunk", len(new) + (0 if same_chunking else len(kept)))
        all_chunks: list[Chunk] = []
        entries: dict[str, DocEntry] = {}
        pages = 0
        for doc_id in sorted(new.keys() | kept):
            doc = new.get(doc_id) or (prev_store.document(doc_id) if prev_store else None)
            if doc is None:
                continue
            if doc_id in new or not same_chunking or prev_store is None:
                chunks = self._chunk(doc)
                self.rep.advance("chunk")
            else:
                chunks = prev_store.chunks_of(doc_id)
            first_row = len(all_chunks)
            store.add_document(doc, chunks, first_row)
            all_chunks.extend(chunks)
            pages += doc.page_count
            entries[doc_id] = DocEntry(
                source=doc.source, content_hash=doc.content_hash, pages=doc.page_count, chunks=len(chunks),
                first_row=first_row, meta=document_metadata(doc, self.metadata),
            )  # fmt: skip
        if prev_store is not None:
            prev_store.close()
        return all_chunks, entries, pages

    def _chunk(self, doc: Document) -> list[Chunk]:
        if self._chunker is None:  # built on first use: an unchanged corpus never loads the tokenizer
            self._chunker = self.spec.chunking.build()
        return self._chunker.split(doc)

    def _write_dense(self, drep: DenseRep, chunks: list[Chunk]) -> DenseRep:
        dconf = dense_config_for(self.spec, drep)
        hashes = [c.hash for c in chunks]
        have = self.cache.get_many(drep.key, hashes)
        # Longest first, as SentenceTransformer.encode sorts within a call: sorting across calls
        # too keeps padding (wasted compute) as low as one big encode() call would.
        missing = sorted(
            {c.hash: c.text for c in chunks if c.hash not in have}.items(),
            key=lambda ht: (-len(ht[1]), ht[0]),
        )
        self.rep.stage(f"embed {drep.model}", len(missing))
        backend = drep.backend
        if missing:
            encoder = dconf.build_encoder("passage")
            backend = encoder.backend
            t = time.monotonic()
            for i in range(0, len(missing), EMBED_CALL):
                part = missing[i : i + EMBED_CALL]
                vecs = encoder.encode([t for _, t in part])
                self.cache.put_many(drep.key, [h for h, _ in part], vecs)
                have.update({h: v for (h, _), v in zip(part, vecs, strict=True)})
                self.rep.advance(f"embed {drep.model}", len(part))
                self.fault("embed")
            self._lap("embed", t)  # encoding alone (model loading excluded), for throughput figures
            self.embedded += len(missing)
        dim = len(next(iter(have.values()))) if have else max(drep.dim, 1)
        vectors: npt.NDArray[np.float32] = (
            np.stack([have[h] for h in hashes]).astype(np.float32)
            if hashes
            else np.zeros((0, dim), np.float32)
        )
        index = VectorIndex.build(vectors, dconf)
        index.save(self.out / "dense" / drep.key)
        return drep.model_copy(update={"dim": dim, "index_kind": index.kind, "backend": backend})
