"""Where `index_paths` runs its heavy steps: this machine's processes, or a cluster.

`index_paths` plans, caches, writes and switches generations the same way whoever runs
the work; an `Executor` only decides how files are extracted and which `GenerationWriter`
chunks and embeds. `LocalExecutor` is the worker-process pool (`extract_many`) and the
plain writer; `ragsys.distributed.RayExecutor` sends both to Ray and feeds the results
into the same caches and writer, so the two indexes are the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ragsys.chunk.chunker import ChunkConfig
from ragsys.extract import ExtractorConfig, ExtractResult, extract_many
from ragsys.index.writer import GenerationWriter


class Executor(Protocol):
    def extract(
        self, paths: Sequence[Path], config: ExtractorConfig, chunking: ChunkConfig
    ) -> Iterator[ExtractResult]:
        """One result per path, in any order; never raises for a bad file. An executor may chunk
        each document where it extracted it (with `chunking`) and hand the chunks to its writer."""
        ...

    # The writer's constructor arguments pass through untouched (Any): an executor adapts how
    # a generation's chunks and vectors are computed, never what a generation is made of.
    def writer(self, *args: Any, **kwargs: Any) -> GenerationWriter: ...


class LocalExecutor:
    """Extraction in `workers` killable processes on this machine; chunking and embedding inline."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    def extract(
        self, paths: Sequence[Path], config: ExtractorConfig, chunking: ChunkConfig
    ) -> Iterator[ExtractResult]:
        return extract_many(paths, config, workers=self.workers)

    def writer(self, *args: Any, **kwargs: Any) -> GenerationWriter:
        return GenerationWriter(*args, **kwargs)
