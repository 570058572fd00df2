"""What a Ray worker does with one file, or with a batch of ready documents.

Plain functions: `ragsys.distributed.extract` wraps them with `ray.remote` at run time, so
this module imports no Ray and its functions are tested like any others.

A file arrives either as bytes shipped by the driver (written to a private temporary
folder under the file's own name, so titles and suffixes match a local run) or as a path
on storage every node mounts at the same place (`--ray-shared-path`). Either way the
document comes back under the driver's path, chunked by the same chunker as a local run.
"""

from __future__ import annotations

import functools
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from ragsys.chunk.chunker import ChunkConfig, StructureChunker
from ragsys.extract import ExtractionError, ExtractorConfig, ExtractResult
from ragsys.extract.pool import extract_one
from ragsys.protocols import Extractor
from ragsys.types import Chunk, Document

Build = Callable[[ExtractorConfig], Extractor]


class FileJob(NamedTuple):
    """`data` is the file's bytes, or None when the worker reads `path` from shared storage."""

    path: str
    data: bytes | None


class FileOutcome(NamedTuple):
    result: ExtractResult
    chunks: list[Chunk] | None  # None when extraction failed
    node: str  # the worker's host name: where the file was extracted


# Per worker process, not per task: Ray reuses its worker processes for many tasks, and the
# chunker's tokenizer (and PyMuPDF's set-up) would otherwise load again for every file. Keyed
# by the (frozen, hashable) config, so a worker serving two runs with other settings keeps both.
@functools.lru_cache(maxsize=4)
def _chunker(chunking: ChunkConfig) -> StructureChunker:
    return chunking.build()


@functools.lru_cache(maxsize=4)
def _extractor(build: Build, config: ExtractorConfig) -> Extractor:
    return build(config)


def _no_clock(path: str) -> None:
    pass


def extract_file(
    job: FileJob,
    config: ExtractorConfig,
    chunking: ChunkConfig,
    build: Build,
    begin: Callable[[str], None] = _no_clock,
    end: Callable[[str], None] = _no_clock,
) -> FileOutcome:
    """Extract and chunk one file; a bad file is an error result, as in `extract_many`.

    `begin` and `end` bracket the extraction alone, the span its time limit covers: building
    the extractor and chunker (a fresh worker's imports) and chunking come outside it, as in
    the local pool.
    """
    extractor, chunker = _extractor(build, config), _chunker(chunking)
    begin(job.path)
    try:
        if job.data is None:
            result = _extract_shared(extractor, Path(job.path))
        else:
            result = _extract_shipped(extractor, job.path, job.data)
    finally:
        end(job.path)
    if result.document is None:
        return FileOutcome(result, None, socket.gethostname())
    doc = result.document.model_copy(update={"id": job.path, "source": job.path})
    chunks = chunker.split(doc)
    return FileOutcome(result._replace(document=doc), chunks, socket.gethostname())


def _extract_shared(extractor: Extractor, path: Path) -> ExtractResult:
    if not path.is_file():
        error = ExtractionError(
            str(path),
            f"not found on Ray node {socket.gethostname()} under --ray-shared-path; mount the same "
            "storage at the same path on every node, or drop --ray-shared-path to ship the bytes",
        )
        return ExtractResult(str(path), None, str(error), type(error).__name__, 0.0)
    return extract_one(extractor, path)


def _extract_shipped(extractor: Extractor, path: str, data: bytes) -> ExtractResult:
    with tempfile.TemporaryDirectory(prefix="ragsys-ray-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(data)
        result = extract_one(extractor, local)
    # Errors name the file the user gave, never the worker's temporary copy.
    error = result.error.replace(str(local), path) if result.error is not None else None
    return result._replace(path=path, error=error)


def chunk_documents(docs: Sequence[Document], chunking: ChunkConfig) -> list[list[Chunk]]:
    """Chunks of documents the driver already holds (corpus.jsonl rows, extraction-cache hits)."""
    chunker = _chunker(chunking)
    return [chunker.split(doc) for doc in docs]
