"""The extractor union that pipeline configs embed, and the one place that builds it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ragsys.extract.pdf import SUPPORTED_SUFFIXES as PDF_EXTRACTOR_SUFFIXES
from ragsys.extract.pdf import PdfExtractorConfig
from ragsys.extract.unstructured import UNSTRUCTURED_SUFFIXES, UnstructuredExtractorConfig
from ragsys.protocols import Extractor

ExtractorConfig = Annotated[PdfExtractorConfig | UnstructuredExtractorConfig, Field(discriminator="kind")]

# File suffixes (lower case, with the dot) each extractor kind accepts.
SUPPORTED_SUFFIXES: dict[str, tuple[str, ...]] = {
    "pymupdf": PDF_EXTRACTOR_SUFFIXES,
    "unstructured": UNSTRUCTURED_SUFFIXES,
}


def extractor_for(config: PdfExtractorConfig | UnstructuredExtractorConfig) -> Extractor:
    """Build the extractor a config describes (this is where disk is first touched)."""
    return config.build()
