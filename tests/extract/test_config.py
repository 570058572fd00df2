"""Extractor configs: round trips, building, supported suffixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from ragsys.extract import (
    SUPPORTED_SUFFIXES,
    ExtractorConfig,
    PdfExtractor,
    PdfExtractorConfig,
    UnstructuredExtractorConfig,
    extractor_for,
)
from ragsys.extract.runtime import use_lean_layout_model


def test_configs_round_trip_and_build(tmp_path: Path) -> None:
    adapter: TypeAdapter[PdfExtractorConfig | UnstructuredExtractorConfig] = TypeAdapter(ExtractorConfig)
    for config in (PdfExtractorConfig(passwords=("a",), tables=False), UnstructuredExtractorConfig()):
        assert adapter.validate_python(json.loads(json.dumps(config.model_dump()))) == config
    assert isinstance(extractor_for(PdfExtractorConfig()), PdfExtractor)
    assert ".docx" in SUPPORTED_SUFFIXES["unstructured"] and ".md" in SUPPORTED_SUFFIXES["pymupdf"]
    with pytest.raises(ValueError):
        PdfExtractorConfig(timeout_s=0)
    assert use_lean_layout_model()  # PyMuPDF's layout model was rebuilt single-threaded
