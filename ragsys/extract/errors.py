"""Typed extraction failures.

Every error names the file, what went wrong and what the user can do about it, so a
batch run over thousands of files can be triaged from its log alone. The `fix`
text is a class attribute because the remedy depends on the kind of failure, not
on the file. `args` is `(path, reason)` so errors pickle across processes.
"""

from __future__ import annotations

import re
from typing import ClassVar

# MuPDF reports a failed allocation as a RuntimeError such as "code=2: malloc (N bytes) failed".
_MUPDF_OOM = re.compile(r"\b(?:m|re|c)alloc\b.*\bfailed\b|out of memory", re.IGNORECASE)


class ExtractionError(Exception):
    """Base class: `path` is the file as given, `reason` says what went wrong."""

    fix: ClassVar[str] = "check that the file opens in a PDF viewer"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} (fix: {self.fix})"


class EncryptedError(ExtractionError):
    fix: ClassVar[str] = "pass --password PASSWORD (config `passwords`) with the document's user password"


class MalformedError(ExtractionError):
    fix: ClassVar[str] = "the file is damaged beyond repair; re-export or re-download it"


class EmptyDocumentError(ExtractionError):
    fix: ClassVar[str] = (
        "the file has no extractable text; if it is scanned and tesseract is missing, install it "
        "(apt-get install tesseract-ocr) so pages are OCR'd; a blank or unreadable scan has none to find"
    )


class UnsupportedFormatError(ExtractionError):
    fix: ClassVar[str] = "convert it to PDF, .txt or .md, or use the `unstructured` extractor"


class ExtractionTimeout(ExtractionError):
    fix: ClassVar[str] = "raise the per-file timeout (config `timeout_s`) or split the file"


class MemoryLimitError(ExtractionError):
    fix: ClassVar[str] = (
        "if the file is genuine, raise the worker memory limit (config `max_memory_mb`); "
        "a decompression bomb needs no fix"
    )


def out_of_memory(path: str, limit_mb: int | None, detail: str) -> MemoryLimitError:
    """The one wording for a file that ran out of memory, capped (a worker) or not (in-process)."""
    need = f"more than {limit_mb} MB" if limit_mb is not None else "more memory than is available"
    return MemoryLimitError(path, f"the file needs {need} to extract ({detail})")


def is_out_of_memory(exc: BaseException) -> bool:
    """A Python MemoryError, or MuPDF failing an allocation (under the worker's memory cap)."""
    return isinstance(exc, MemoryError) or bool(_MUPDF_OOM.search(str(exc)))


class WorkerCrashError(ExtractionError):
    fix: ClassVar[str] = "the PDF library crashed on this file; report it, or exclude the file"
