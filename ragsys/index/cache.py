"""Caches that outlive generations, so a re-run or a resumed run redoes no work.

Both are SQLite in WAL mode and commit after every batch: a run killed mid-way
keeps what it had finished, and the next run picks up from there.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragsys.types import Document


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def config_key(config: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


class EmbeddingCache:
    """Vectors keyed by (representation key, chunk text hash)."""

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        self._conn.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def get_many(self, rep: str, hashes: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        out: dict[str, npt.NDArray[np.float32]] = {}
        keys = sorted({f"{rep}:{h}" for h in hashes})
        for i in range(0, len(keys), 900):
            part = keys[i : i + 900]
            q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
            for key, blob in self._conn.execute(q, part):
                out[str(key).split(":", 1)[1]] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, rep: str, hashes: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        rows = [
            (f"{rep}:{h}", np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for h, v in zip(hashes, vectors, strict=True)
        ]
        self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


class ExtractionCache:
    """Extracted documents keyed by (file content hash, extractor config)."""

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        self._conn.execute("CREATE TABLE IF NOT EXISTS docs (key TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def get(self, content_hash: str, extractor_key: str, doc_id: str, source: str) -> Document | None:
        row = self._conn.execute(
            "SELECT data FROM docs WHERE key = ?", (f"{extractor_key}:{content_hash}",)
        ).fetchone()
        if row is None:
            return None
        doc = Document.model_validate_json(zlib.decompress(row[0]))
        return doc.model_copy(update={"id": doc_id, "source": source})

    def put(self, doc: Document, extractor_key: str) -> None:
        blob = zlib.compress(doc.model_dump_json().encode(), 3)
        self._conn.execute(
            "INSERT OR REPLACE INTO docs VALUES (?, ?)", (f"{extractor_key}:{doc.content_hash}", blob)
        )
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()
