"""The chunk store of one generation: documents, pages and chunks in SQLite.

Chunk rows are 0..n-1 and line up with the rows of the BM25 matrix and the FAISS
index of the same generation, so a retriever's row numbers resolve here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ragsys.types import Block, Chunk, Document, Page

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, content_hash TEXT NOT NULL, title TEXT,
    author TEXT, page_count INTEGER, extractor TEXT, warnings TEXT
);
CREATE TABLE IF NOT EXISTS pages (
    doc_id TEXT NOT NULL, number INTEGER NOT NULL, text TEXT NOT NULL, blocks TEXT NOT NULL,
    has_text_layer INTEGER NOT NULL, ocr INTEGER NOT NULL, PRIMARY KEY (doc_id, number)
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id);
CREATE INDEX IF NOT EXISTS chunks_id ON chunks (id);
"""


class ChunkStore:
    """Read access (thread-safe) and, for a generation being built, append access."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path) -> ChunkStore:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.executescript(SCHEMA)
        return cls(conn)

    @classmethod
    def open_readonly(cls, path: Path) -> ChunkStore:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def commit(self) -> None:
        self._conn.commit()

    # -- writing -------------------------------------------------------------------------
    def add_document(self, doc: Document, chunks: Sequence[Chunk], first_row: int) -> int:
        """Adds a document, its pages and chunks from row `first_row`; returns the next row."""
        c = self._conn
        c.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
            (doc.id, doc.source, doc.content_hash, doc.title, doc.author, doc.page_count,
             doc.extractor, json.dumps(list(doc.warnings))),
        )  # fmt: skip
        c.executemany(
            "INSERT INTO pages VALUES (?,?,?,?,?,?)",
            [
                (doc.id, p.number, p.text, json.dumps([b.model_dump() for b in p.blocks]),
                 int(p.has_text_layer), int(p.ocr))
                for p in doc.pages
            ],
        )  # fmt: skip
        rows = [(first_row + i, ch.id, ch.doc_id, ch.model_dump_json()) for i, ch in enumerate(chunks)]
        c.executemany("INSERT INTO chunks VALUES (?,?,?,?)", rows)
        return first_row + len(chunks)

    # -- reading -------------------------------------------------------------------------
    def num_chunks(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
        return int(n)

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """Chunks by row, in the order asked (a row may repeat)."""
        if not rows:
            return []
        wanted = sorted(set(int(r) for r in rows))
        found: dict[int, Chunk] = {}
        with self._lock:
            for i in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
                part = wanted[i : i + 900]
                q = f"SELECT row, data FROM chunks WHERE row IN ({','.join('?' * len(part))})"
                for row, data in self._conn.execute(q, part):
                    found[int(row)] = Chunk.model_validate_json(data)
        return [found[int(r)] for r in rows]

    def iter_chunks(self) -> Iterator[Chunk]:
        with self._lock:
            data = self._conn.execute("SELECT data FROM chunks ORDER BY row").fetchall()
        for (d,) in data:
            yield Chunk.model_validate_json(d)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        with self._lock:
            data = self._conn.execute(
                "SELECT data FROM chunks WHERE doc_id = ? ORDER BY row", (doc_id,)
            ).fetchall()
        return [Chunk.model_validate_json(d) for (d,) in data]

    def rows_of_docs(self, doc_ids: Sequence[str]) -> list[int]:
        out: list[int] = []
        with self._lock:
            for i in range(0, len(doc_ids), 900):
                part = list(doc_ids[i : i + 900])
                q = f"SELECT row FROM chunks WHERE doc_id IN ({','.join('?' * len(part))})"
                out.extend(int(r) for (r,) in self._conn.execute(q, part))
        return sorted(out)

    def rows_of_chunk_ids(self, ids: Iterable[str]) -> dict[str, int]:
        ids = list(ids)
        out: dict[str, int] = {}
        with self._lock:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                q = f"SELECT id, row FROM chunks WHERE id IN ({','.join('?' * len(part))})"
                out.update({str(a): int(b) for a, b in self._conn.execute(q, part)})
        return out

    def document(self, doc_id: str) -> Document | None:
        """The stored document with its pages (as extracted), or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is None:
                return None
            pages = self._conn.execute(
                "SELECT number, text, blocks, has_text_layer, ocr FROM pages WHERE doc_id = ? "
                "ORDER BY number",
                (doc_id,),
            ).fetchall()
        return Document(
            id=row[0], source=row[1], content_hash=row[2], title=row[3] or "", author=row[4] or "",
            page_count=int(row[5]), extractor=row[6] or "", warnings=tuple(json.loads(row[7] or "[]")),
            pages=tuple(
                Page(number=int(n), text=t, blocks=tuple(Block.model_validate(b) for b in json.loads(bl)),
                     has_text_layer=bool(h), ocr=bool(o))
                for n, t, bl, h, o in pages
            ),
        )  # fmt: skip

    def page(self, doc_id: str, number: int) -> Page | None:
        with self._lock:
            r = self._conn.execute(
                "SELECT number, text, blocks, has_text_layer, ocr FROM pages WHERE doc_id = ? AND number = ?",
                (doc_id, number),
            ).fetchone()
        if r is None:
            return None
        blocks = tuple(Block.model_validate(b) for b in json.loads(r[2]))
        return Page(number=int(r[0]), text=r[1], blocks=blocks, has_text_layer=bool(r[3]), ocr=bool(r[4]))

    def doc_ids(self) -> list[str]:
        with self._lock:
            return [str(d) for (d,) in self._conn.execute("SELECT doc_id FROM documents ORDER BY doc_id")]
