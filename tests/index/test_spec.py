"""What an index records of its extractor: settings that change the text, never secrets or limits."""

from __future__ import annotations


def test_limits_are_not_index_settings_so_changing_them_re_extracts_nothing() -> None:
    from ragsys.extract import PdfExtractorConfig
    from ragsys.index.spec import IndexSpec

    base = IndexSpec(extractor=PdfExtractorConfig())
    limited = IndexSpec(extractor=PdfExtractorConfig(max_memory_mb=1024, timeout_s=5, passwords=("pw",)))
    assert base.extractor_settings() == limited.extractor_settings()
    assert "pw" not in str(limited.extractor_settings())
    no_ocr = IndexSpec(extractor=PdfExtractorConfig(ocr="off"))
    assert base.extractor_settings() != no_ocr.extractor_settings()
