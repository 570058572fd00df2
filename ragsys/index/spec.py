"""What an index is built from, apart from the files: `IndexSpec`.

An index serves a pipeline but does not depend on one: extraction and chunking decide its
chunks, and it holds one BM25 structure per tokenizer and one vector set per dense encoder
a pipeline's retrievers name. `PipelineConfig.index_spec()` derives the spec; two pipelines
that differ only in fusion, reranking or generation share an index.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ragsys.chunk.chunker import ChunkConfig
from ragsys.extract import ExtractorConfig, PdfExtractorConfig
from ragsys.retrieve.dense import DenseConfig
from ragsys.retrieve.tokenize import TokenizerConfig
from ragsys.types import Frozen


class IndexSpec(Frozen):
    """Extractor and chunking, plus the sparse and dense representations to store.

    Example:
        >>> IndexSpec(sparse=(TokenizerConfig(),)).dense
        ()
    """

    extractor: Annotated[ExtractorConfig, Field(discriminator="kind")] = PdfExtractorConfig()
    chunking: ChunkConfig = ChunkConfig()
    sparse: tuple[TokenizerConfig, ...] = ()
    dense: tuple[DenseConfig, ...] = ()

    def extractor_settings(self) -> dict[str, object]:
        """The extractor's settings minus secrets and limits: passwords never reach disk, and a
        changed time or memory limit re-extracts nothing (it changes which files fail, not text)."""
        return self.extractor.model_dump(mode="json", exclude={"passwords", "timeout_s", "max_memory_mb"})
