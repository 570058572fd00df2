"""Contracts between components: anything with the method fits (no base classes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragsys.types import Answer, Chunk, Document, Hit


class Extractor(Protocol):
    def extract(self, path: Path) -> Document: ...


class Chunker(Protocol):
    def split(self, doc: Document) -> list[Chunk]: ...


class Retriever(Protocol):
    def retrieve(self, query: str, k: int = 10) -> list[Hit]: ...


class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit], k: int = 10) -> list[Hit]: ...


class Generator(Protocol):
    def generate(self, query: str, context: Sequence[Hit]) -> Answer: ...


class Encoder(Protocol):
    """Texts to L2-normalized float32 vectors, shape (len(texts), dim)."""

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class TokenCounter(Protocol):
    """Counts tokens as the embedder's tokenizer sees them (chunk bounds are in these)."""

    def __call__(self, text: str) -> int: ...
