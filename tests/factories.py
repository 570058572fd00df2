"""Builders for `Chunk` and `Hit` test data, so each test names only the fields it cares about.

Offsets default to the whole text on one page and `hash` to the sha256 of the text, which is
what a real chunker produces; pass any field to override it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ragsys.types import Chunk, Hit


def make_chunk(
    id: str,
    text: str,
    doc_id: str | None = None,
    source: str | None = None,
    page_start: int = 1,
    page_end: int = 1,
    **extra: Any,
) -> Chunk:
    """A chunk spanning all of `text`; `doc_id` defaults to `id` and `source` to `{doc_id}.pdf`."""
    doc_id = id if doc_id is None else doc_id
    fields: dict[str, Any] = {
        "start": 0,
        "end": len(text),
        "hash": hashlib.sha256(text.encode()).hexdigest(),
    }
    return Chunk(
        id=id,
        doc_id=doc_id,
        source=f"{doc_id}.pdf" if source is None else source,
        text=text,
        page_start=page_start,
        page_end=page_end,
        **(fields | extra),
    )


def make_hit(
    id: str,
    text: str,
    score: float = 1.0,
    source: str = "bm25",
    *,
    chunk_source: str | None = None,
    **chunk_fields: Any,
) -> Hit:
    """A hit on `make_chunk(id, text, source=chunk_source, **chunk_fields)`.

    `source` is the retriever's name, as on `Hit`; the chunk's file is `chunk_source`.
    """
    return Hit(chunk=make_chunk(id, text, source=chunk_source, **chunk_fields), score=score, source=source)
