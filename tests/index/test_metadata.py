"""Document metadata: derived by the stated rules, stored in the index, overridden by metadata.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

from ragsys.index.build import index_paths
from ragsys.index.metadata import MetadataFileError, derive_metadata
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from tests.fixtures.corpus import write_corpus

COVER = (
    "UNITED STATES\nSECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\n"
    "For the quarterly period ended July 1, 2023\nCommission File Number: 001-36743\n"
    "Apple Inc.\n(Exact name of Registrant as specified in its charter)\nCalifornia\n"
)


def test_a_filing_cover_page_gives_form_period_and_company() -> None:
    meta = derive_metadata("/data/2023 Q3 AAPL.pdf", "0000320193-23-000077", COVER)
    assert meta == {
        "file": "2023 Q3 AAPL.pdf", "form": "10-Q", "period_end": "2023-07-01", "period": "2023 Q3",
        "company": "Apple Inc.", "ticker": "AAPL", "title": "Apple Inc. 10-Q 2023 Q3",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Q2-2022 msft 10k.pdf", {"period": "2022 Q2", "form": "10-K", "title": "10-K 2022 Q2"}),
        ("FY23 Annual Report.pdf", {"period": "2023 FY", "title": "Some text without a cover page."}),
        ("notes.txt", {"title": "Some text without a cover page."}),
    ],
)
def test_file_names_give_period_and_form(name: str, expected: dict[str, str]) -> None:
    meta = derive_metadata(name, "", "Some text without a cover page.")
    assert {k: meta[k] for k in expected} == expected and meta["file"] == name and "company" not in meta


def test_a_pdf_title_in_words_is_the_title() -> None:
    meta = derive_metadata("r.pdf", "Annual Report 2023", "whatever")
    assert meta["title"] == "Annual Report 2023"


def _pdf(path: Path, text: str, title: str = "") -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    y = 72
    for line in text.splitlines():
        page.insert_text((72, y), line, fontsize=10)
        y += 14
    doc.set_metadata({"title": title})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


BM25_ONLY = PipelineConfig(name="bm25", retrievers=(BM25Config(),))


def test_index_stores_metadata_and_metadata_jsonl_overrides_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _pdf(docs / "2023 Q3 AAPL.pdf", COVER + "Revenue was $39,669 million.")
    write_corpus(docs, {"notes.txt": "Quarterly revenue rose eighteen percent."})
    index_paths([docs], tmp_path / "idx", BM25_ONLY.index_spec(), workers=1)
    meta = {Path(d).name: e.meta for d, e in Index.open(tmp_path / "idx").manifest.documents.items()}
    assert meta["2023 Q3 AAPL.pdf"]["company"] == "Apple Inc." and meta["notes.txt"]["file"] == "notes.txt"
    first = Index.open(tmp_path / "idx").manifest.generation
    (docs / "metadata.jsonl").write_text(
        json.dumps({"file": "notes.txt", "company": "Acme", "form": "memo"}) + "\n"
    )
    summary = index_paths([docs], tmp_path / "idx", BM25_ONLY.index_spec(), workers=1)
    assert (
        summary.generation != first and not summary.files_failed
    )  # an edit re-indexes; the file is no input
    meta = {Path(d).name: e.meta for d, e in Index.open(tmp_path / "idx").manifest.documents.items()}
    assert (meta["notes.txt"]["company"], meta["notes.txt"]["form"]) == ("Acme", "memo")


def test_a_bad_metadata_line_names_the_file_and_line(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs")
    (docs / "metadata.jsonl").write_text('{"file": "notes.txt"}\n{"company": "no file key"}\n')
    with pytest.raises(MetadataFileError, match=r"metadata.jsonl:2: .*\"file\""):
        index_paths([docs], tmp_path / "idx", BM25_ONLY.index_spec(), workers=1)
