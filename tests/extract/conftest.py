"""The default PDF extractor (OCR off), shared by the PDF and plain-text tests."""

from __future__ import annotations

import pytest

from ragsys.extract import PdfExtractor, PdfExtractorConfig


@pytest.fixture(scope="module")
def extractor() -> PdfExtractor:
    return PdfExtractorConfig(ocr="off").build()
