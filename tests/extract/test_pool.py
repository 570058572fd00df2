"""The extraction worker pool: timeouts kill overdue workers, results keep their paths."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ragsys.extract import PdfExtractorConfig, extract_many
from tests.fixtures import pdfgen
from tests.fixtures.documents import assert_offsets
from tests.fixtures.paths import SHARED_DATA


def test_extract_many_kills_an_overdue_worker_and_goes_on(tmp_path: Path) -> None:
    paths = [tmp_path / "a.txt", tmp_path / "slow.txt", tmp_path / "b.txt", tmp_path / "bad.pdf"]
    for p in paths:
        p.write_text(f"text of {p.name}")
    seen: list[str] = []
    start = time.monotonic()
    results = list(
        extract_many(
            paths,
            PdfExtractorConfig(),
            workers=2,
            timeout_s=4.0,
            on_result=lambda r: seen.append(r.path),
            build=pdfgen.build_slow,
        )
    )
    assert time.monotonic() - start < 40  # the slow file sleeps 60 s: it was killed
    by_path = {r.path: r for r in results}
    assert sorted(by_path) == sorted(str(p) for p in paths) and sorted(seen) == sorted(by_path)
    slow = by_path[str(tmp_path / "slow.txt")]
    assert (
        slow.document is None and slow.error_type == "ExtractionTimeout" and "slow.txt" in (slow.error or "")
    )
    assert by_path[str(tmp_path / "bad.pdf")].error_type == "UnsupportedFormatError"
    for name in ("a.txt", "b.txt"):
        document = by_path[str(tmp_path / name)].document
        assert document is not None and document.pages[0].text == f"text of {name}"


def test_extract_many_in_process_keeps_order_and_times_out(tmp_path: Path) -> None:
    paths = [tmp_path / "one.txt", tmp_path / "slow.md", tmp_path / "two.md"]
    for p in paths:
        p.write_text("# Hi\n\nthere")
    start = time.monotonic()
    results = list(
        extract_many(paths, PdfExtractorConfig(), workers=1, timeout_s=0.5, build=pdfgen.build_slow)
    )
    assert time.monotonic() - start < 10
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [r.error_type for r in results] == [None, "ExtractionTimeout", None]


@pytest.mark.slow
def test_real_hard_pdfs_yield_text_or_typed_errors() -> None:
    manifest = SHARED_DATA / "pdfs" / "manifest.json"
    if not manifest.exists():
        pytest.skip(f"real data not found at {manifest.parent}")
    entries = [e for e in json.loads(manifest.read_text()) if e["file"].lower().endswith(".pdf")]
    passwords = tuple(sorted({e["password"] for e in entries if e.get("password")}))
    paths = [manifest.parent / e["file"] for e in entries]
    config = PdfExtractorConfig(passwords=passwords, timeout_s=120)
    for result in extract_many(paths, config, workers=2):
        assert result.document is not None or result.error_type in {
            "EncryptedError",
            "MalformedError",
            "EmptyDocumentError",
            "UnsupportedFormatError",
            "ExtractionTimeout",
        }, result
        if result.document is not None:
            assert_offsets(result.document)
