"""Document pages as text and PNG, and only for files in the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragsys.index.reader import Index
from tests.fixtures import pdfgen
from tests.fixtures.serve import pdf_doc


def test_documents_serve_page_text_and_png(client: TestClient, tiny_index: Index) -> None:
    doc = pdf_doc(tiny_index)
    r = client.get(f"/documents/{doc}/pages/2")
    assert r.status_code == 200 and r.json()["pages"] == 2 and "Page 2." in r.json()["text"]
    for url in (f"/documents/{doc}/pages/2.png", f"/documents/{doc}/pages/1?format=png"):
        png = client.get(url)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/documents/{pdf}/pages/3", 404, "out of range"),
        ("/documents/{pdf}/pages/0", 422, "not a page number"),
        ("/documents/{pdf}/pages/two", 422, "not a page number"),
        ("/documents/{txt}/pages/1.png", 404, "not a PDF"),
        ("/documents/no-such-doc/pages/1", 404, "not in this index"),
        ("/documents/..%2F..%2Fetc%2Fpasswd/pages/1", 404, "not in this index"),
        ("/documents/%2Fetc%2Fpasswd/pages/1.png", 404, "not in this index"),
        ("/documents/{pdfdir}%2F..%2F..%2F..%2Fetc%2Fpasswd/pages/1", 404, "not in this index"),
        ("/documents/{pdf}%2F..%2Fnotes.txt/pages/1", 404, "not in this index"),
        ("/documents/{unindexed}/pages/1", 404, "not in this index"),
    ],
)
def test_documents_open_only_indexed_files(
    client: TestClient, tiny_index: Index, monkeypatch: pytest.MonkeyPatch, url: str, status: int, says: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    import pymupdf

    stray = pdfgen.simple(tmp_path / "stray.pdf")  # a real PDF on disk that was never indexed
    opened: list[object] = []
    monkeypatch.setattr(pymupdf, "open", lambda *a, **k: opened.append(a))  # nothing may be opened
    pdf = pdf_doc(tiny_index)
    txt = next(d for d in tiny_index.manifest.documents if d.endswith(".txt"))
    url = url.format(pdf=pdf, txt=txt, pdfdir=str(Path(pdf).parent), unindexed=stray)
    r = client.get(url)
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert opened == []
