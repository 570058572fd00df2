"""`RayExecutor`: `index_paths` with extraction, chunking and embedding on a Ray cluster.

Runs where:
- driver (this process): planning by content hash, the extraction and embedding caches,
  the SQLite chunk store, BM25 over the whole corpus, the FAISS index, the manifest switch;
- Ray tasks: extraction plus chunking, one file per task (`files.extract_file`); chunking of
  documents the driver already holds (corpus.jsonl rows, extraction-cache hits), in batches;
- Ray Data actors: embedding, the encoder loaded once per actor (`embed.EmbedWorker`).

The driver writes the generation with the local `GenerationWriter`, whose chunker and
encoder are only consulted for what the cluster did not already do: the chunks and BM25
statistics of a Ray build are those of a local one. Example:

    >>> with RayExecutor(RayOptions(address="auto")) as ex:
    ...     index_paths([Path("docs")], Path("idx"), spec, executor=ex)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from ragsys.chunk.chunker import ChunkConfig
from ragsys.distributed.cluster import ClusterError, RayOptions, cluster_cpus, connected
from ragsys.distributed.extract import extract_on_ray
from ragsys.distributed.files import Build
from ragsys.distributed.writer import RayGenerationWriter
from ragsys.extract import ExtractorConfig, ExtractResult, extractor_for
from ragsys.index.writer import GenerationWriter
from ragsys.types import Chunk


class RayExecutor:
    """An `Executor` (ragsys.index.executor) on Ray; a context manager that connects and disconnects.

    `sent` lists every file sent to the cluster in this executor's life, so a caller (or a
    test) can see that an incremental run sent only new and changed files.
    """

    def __init__(self, options: RayOptions | None = None, *, build: Build = extractor_for) -> None:
        self.options = options or RayOptions()
        self.build = build
        self.sent: list[str] = []
        self.nodes: set[str] = set()  # where files were extracted
        self.chunks: dict[str, list[Chunk]] = {}  # doc id -> chunks made on the cluster, until written
        self._stack = ExitStack()
        self._ray: ModuleType | None = None
        self._cpus = 1

    def __enter__(self) -> RayExecutor:
        self._ray = self._stack.enter_context(connected(self.options))
        self._cpus = cluster_cpus(self._ray)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ray = None
        self._stack.close()

    @property
    def ray(self) -> ModuleType:
        if self._ray is None:
            raise ClusterError("RayExecutor is not connected: use it as `with RayExecutor(...) as ex:`")
        return self._ray

    @property
    def bound(self) -> int:
        """Tasks in flight: by default one per cluster CPU, so a sent file starts at once."""
        return self.options.max_in_flight or self._cpus

    def extract(
        self, paths: Sequence[Path], config: ExtractorConfig, chunking: ChunkConfig
    ) -> Iterator[ExtractResult]:
        """Each file extracted and chunked on a worker; the chunks wait here for the writer."""
        self.chunks.clear()  # a run that failed before writing must not lend its chunks to the next
        self.sent.extend(str(p) for p in paths)
        outcomes = extract_on_ray(
            self.ray, paths, config, chunking, bound=self.bound, shared_path=self.options.shared_path,
            build=self.build,
        )  # fmt: skip
        for outcome in outcomes:
            if outcome.result.document is not None and outcome.chunks is not None:
                self.chunks[outcome.result.document.id] = outcome.chunks
                self.nodes.add(outcome.node)
            yield outcome.result

    def writer(self, *args: Any, **kwargs: Any) -> GenerationWriter:
        return RayGenerationWriter(self, *args, **kwargs)
