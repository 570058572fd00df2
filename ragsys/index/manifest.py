"""The index manifest: which generation is current, and what it was built with.

`DIR/manifest.json` is the single switch point. A generation directory is complete
before the manifest names it, so readers never see a half-written index.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ragsys.fsutil import atomic_write_text
from ragsys.index.errors import IndexFormatError, IndexNotFoundError
from ragsys.types import Frozen

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class SparseRep(Frozen):
    """A BM25 term-frequency structure, keyed by the tokenizer that produced it."""

    key: str
    tokenizer: dict[str, object]


class DenseRep(Frozen):
    """Dense vectors of every chunk for one encoder (model weights + passage prefix)."""

    key: str
    model: str
    fingerprint: str
    passage_prefix: str
    max_seq_length: int | None
    dim: int
    index_kind: str
    backend: str = "torch"  # the runtime that embedded the passages (ragsys/encoders/backend.py)


class DocEntry(Frozen):
    source: str
    content_hash: str
    pages: int
    chunks: int
    first_row: int = -1  # its chunks are rows first_row .. first_row + chunks - 1 (-1: older index)
    meta: dict[str, str] = {}  # ragsys.index.metadata: file, form, period, company, ticker, title, ...


class Manifest(Frozen):
    format_version: int = FORMAT_VERSION
    generation: str
    created: str
    chunking: dict[str, object]
    extractor: dict[str, object]
    sparse: tuple[SparseRep, ...] = ()
    dense: tuple[DenseRep, ...] = ()
    documents: dict[str, DocEntry] = {}
    pages: int = 0
    chunks: int = 0
    metadata: str = ""  # rules version + metadata.jsonl digest (ragsys.index.metadata.metadata_signature)

    def signature(self) -> str:
        """What must match for an unchanged corpus to need no new generation."""
        reps = {
            "chunking": self.chunking,
            "extractor": self.extractor,
            "sparse": sorted(r.key for r in self.sparse),
            "dense": sorted(r.key for r in self.dense),
            "metadata": self.metadata,
        }
        return json.dumps(reps, sort_keys=True)


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(index_dir, "no index here; create one with `ragsys index PATH --index DIR`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise IndexFormatError(index_dir, f"manifest.json is not valid JSON ({e}); re-index") from e
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            index_dir, f"index format {version}, this ragsys reads {FORMAT_VERSION}; re-index into a new DIR"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        raise IndexFormatError(index_dir, f"manifest.json is damaged: {e}; re-index") from e


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    atomic_write_text(index_dir / MANIFEST, manifest.model_dump_json(indent=1))
