"""The `unstructured` extractor: element mapping with a fake partition (the library is optional),
and the real library offline."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ragsys.extract import EncryptedError, UnstructuredExtractor, UnstructuredExtractorConfig
from ragsys.extract.unstructured import elements_to_pages
from tests.fixtures import pdfgen
from tests.fixtures.documents import assert_offsets


def _element(category: str, text: str, page: int | None = 1, **meta: object) -> SimpleNamespace:
    return SimpleNamespace(category=category, text=text, metadata=SimpleNamespace(page_number=page, **meta))


def test_unstructured_elements_map_to_pages(tmp_path: Path) -> None:
    elements = [
        _element("Title", "Report", category_depth=0),
        _element("NarrativeText", "Some text."),
        _element("Table", "a b", text_as_html="<table><tr><td>a</td><td>b</td></tr></table>"),
        _element("PageBreak", ""),
        _element("Title", "Part two", page=3, category_depth=1),
        _element("ListItem", "an item", page=3),
    ]
    calls: list[dict[str, object]] = []

    def partition(**kwargs: object) -> list[SimpleNamespace]:
        calls.append(kwargs)
        return elements

    path = tmp_path / "memo.html"
    path.write_text("<p>x</p>")
    doc = UnstructuredExtractor(UnstructuredExtractorConfig(), partition).extract(path)
    assert calls == [{"filename": str(path), "strategy": "fast"}]
    assert [(b.kind, b.level, b.text) for b in doc.pages[0].blocks] == [
        ("heading", 1, "Report"),
        ("paragraph", 0, "Some text."),
        ("table", 0, "<table><tr><td>a</td><td>b</td></tr></table>"),
    ]
    assert [p.number for p in doc.pages] == [1, 2, 3] and not doc.pages[1].has_text_layer
    assert [b.level for b in doc.pages[2].blocks] == [2, 0]
    assert doc.extractor == "unstructured" and doc.title == "Report"
    assert_offsets(doc)
    assert elements_to_pages([]) == elements_to_pages([_element("Image", "")])


def test_unstructured_checks_pdf_passwords_first(tmp_path: Path) -> None:
    path = pdfgen.encrypted(tmp_path / "enc.pdf", user_pw="pw")
    seen: list[object] = []

    def partition(**kwargs: object) -> list[SimpleNamespace]:
        seen.append(kwargs.get("password"))
        return [_element("NarrativeText", "unlocked")]

    with pytest.raises(EncryptedError):
        UnstructuredExtractor(UnstructuredExtractorConfig(), partition).extract(path)
    UnstructuredExtractor(UnstructuredExtractorConfig(passwords=("x", "pw")), partition).extract(path)
    assert seen == ["pw"]


def test_unstructured_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "unstructured.partition.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'ragsys\[unstructured\]'"):
        UnstructuredExtractorConfig().build()


def test_unstructured_reads_markdown_and_html_offline(tmp_path: Path) -> None:
    """The real library (the extra is installed by `make test`), with no model download."""
    pytest.importorskip("unstructured.partition.auto")
    from ragsys.extract import UnstructuredExtractorConfig

    md = tmp_path / "a.md"
    md.write_text("# Title\n\nSome paragraph about robots.\n", encoding="utf-8")
    html = tmp_path / "b.html"
    html.write_text("<html><body><h1>Head</h1><p>Para text.</p></body></html>", encoding="utf-8")
    extractor = UnstructuredExtractorConfig().build()
    for path, heading in ((md, "Title"), (html, "Head")):
        doc = extractor.extract(path)
        blocks = doc.pages[0].blocks
        assert doc.extractor == "unstructured" and blocks[0].kind == "heading" and blocks[0].text == heading
        assert all(doc.pages[0].text[b.start : b.end] == b.text for b in blocks)
