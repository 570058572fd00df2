"""Files to `Document`s: PyMuPDF by default, `unstructured` as an optional extra.

>>> from ragsys.extract import PdfExtractorConfig, extract_many
>>> for result in extract_many(paths, PdfExtractorConfig(passwords=("pw",))):
...     print(result.path, result.error or len(result.document.pages))
"""

from ragsys.extract.config import SUPPORTED_SUFFIXES, ExtractorConfig, extractor_for
from ragsys.extract.errors import (
    EmptyDocumentError,
    EncryptedError,
    ExtractionError,
    ExtractionTimeout,
    MalformedError,
    MemoryLimitError,
    UnsupportedFormatError,
    WorkerCrashError,
)
from ragsys.extract.pdf import PdfExtractor, PdfExtractorConfig
from ragsys.extract.pool import ExtractResult, extract_many
from ragsys.extract.unstructured import UnstructuredExtractor, UnstructuredExtractorConfig

__all__ = [
    "SUPPORTED_SUFFIXES",
    "EmptyDocumentError",
    "EncryptedError",
    "ExtractResult",
    "ExtractionError",
    "ExtractionTimeout",
    "ExtractorConfig",
    "MalformedError",
    "MemoryLimitError",
    "PdfExtractor",
    "PdfExtractorConfig",
    "UnstructuredExtractor",
    "UnstructuredExtractorConfig",
    "UnsupportedFormatError",
    "WorkerCrashError",
    "extract_many",
    "extractor_for",
]
