"""Structure-aware chunking: a `Document`'s blocks packed into chunks of at most `max_tokens`.

`chunker` holds `ChunkConfig` and `StructureChunker` (the rules are in its docstring); `spans`
cuts text into sentences, rows and cells; `pieces` turns blocks into counted pieces; `pack`
packs pieces into chunks; `tokens` counts tokens as the embedder does.

`ChunkConfig` is re-exported here because pipeline files declare it (`chunking=ChunkConfig(...)`).
"""

from ragsys.chunk.chunker import ChunkConfig, StructureChunker

__all__ = ["ChunkConfig", "StructureChunker"]
