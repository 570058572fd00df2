"""Opening a cited page: its text from the index's chunk store, its image from the PDF.

A document id from a request is only ever a key into the index manifest; the file that
is opened is the manifest's own `source` for that key. So `../../etc/passwd`, an
absolute path that was never indexed, or a symlink trick cannot reach the filesystem.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from ragsys.index.manifest import DocEntry
from ragsys.index.reader import Index
from ragsys.serve.live import LiveIndex

MAX_ECHO = 120  # how much of a bad id an error message repeats
MAX_SIDE_PX = 2000  # a poster-sized page is scaled down rather than rendered at full dpi


class PageSource:
    """Each request reads one generation, pinned while it runs (`ragsys.serve.live`).

    Example:
    >>> pages = PageSource(LiveIndex(pipeline, Index.open(Path("idx"))), dpi=110)  # doctest: +SKIP
    >>> pages.text("/docs/report.pdf", 2)["text"][:40]  # doctest: +SKIP
    """

    def __init__(self, live: LiveIndex, dpi: int) -> None:
        self.live, self.dpi = live, dpi
        self._render_lock = threading.Lock()  # PyMuPDF is not safe to call from several threads at once

    def entry(self, index: Index, doc: str, page: int) -> DocEntry:
        entry = index.manifest.documents.get(doc)
        if entry is None:
            raise HTTPException(404, f"unknown document {doc[:MAX_ECHO]!r}: it is not in this index")
        if not 1 <= page <= entry.pages:
            raise HTTPException(404, f"page {page} is out of range: the document has {entry.pages} page(s)")
        return entry

    def text(self, doc: str, page: int) -> dict[str, object]:
        with self.live.pinned() as snap:
            entry = self.entry(snap.index, doc, page)
            stored = snap.index.store.page(doc, page)
        if stored is None:
            raise HTTPException(404, f"page {page} has no stored text in this index")
        return {"doc": doc, "name": Path(entry.source).name, "page": page, "pages": entry.pages,
                "text": stored.text, "has_image": is_pdf(entry)}  # fmt: skip

    def png(self, doc: str, page: int) -> bytes:
        entry = self.entry(self.live.current().index, doc, page)  # reads the manifest only
        if not is_pdf(entry):
            raise HTTPException(404, f"no page image: {Path(entry.source).name} is not a PDF")
        try:
            with self._render_lock:
                return render_png(Path(entry.source), page, self.dpi)
        except Exception as e:  # moved, changed or damaged since indexing: pymupdf raises many kinds
            raise HTTPException(410, f"the indexed file can no longer be rendered: {e}") from e


def is_pdf(entry: DocEntry) -> bool:
    return entry.source.lower().endswith(".pdf")


def render_png(path: Path, page: int, dpi: int) -> bytes:
    """Renders one page at `dpi`, but never wider or taller than MAX_SIDE_PX (memory stays
    bounded whatever the page size); a file that now has fewer pages is an error, not a crash."""
    import pymupdf

    doc: Any = pymupdf.open(path)  # type: ignore[no-untyped-call]
    try:
        if page > doc.page_count:
            raise ValueError(f"{path.name} now has {doc.page_count} page(s); re-index it")
        p = doc[page - 1]
        zoom = min(dpi / 72, MAX_SIDE_PX / max(p.rect.width, p.rect.height, 1.0))
        matrix = pymupdf.Matrix(zoom, zoom)  # type: ignore[no-untyped-call]
        data: bytes = p.get_pixmap(matrix=matrix).tobytes("png")
        return data
    finally:
        doc.close()
