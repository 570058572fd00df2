"""Contracts between components: anything with the method fits (no base classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


OnText = Callable[[str], None]  # receives each new piece of answer text as it is decoded


class Generator(Protocol):
    """Answers a query from passages, citing them; `stream` also hands each new piece of the
    answer to `on_text` (None: the same as `generate`). `choose` is the constrained final step
    for closed-set questions: the most likely of `options` given the answer, and every option's
    score (PubMedQA's yes / no / maybe)."""

    def generate(self, query: str, context: Sequence[Hit]) -> Answer: ...

    def stream(self, query: str, context: Sequence[Hit], on_text: OnText | None) -> Answer: ...

    def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]: ...


class Encoder(Protocol):
    """Texts to L2-normalized float32 vectors, shape (len(texts), dim)."""

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class TokenCounter(Protocol):
    """Counts tokens as the embedder's tokenizer sees them (chunk bounds are in these)."""

    def __call__(self, text: str) -> int: ...
