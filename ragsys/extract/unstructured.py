"""The `unstructured` library as an alternative extractor (optional extra).

It covers formats PyMuPDF does not (.html, .docx) at the price of speed: the
`fast` strategy still classifies every text element with a spaCy model (see
eval/bench/extract.py for the measured gap). Elements map to blocks: `Title` ->
heading (level from `category_depth`), `Table` -> table (its HTML when
unstructured inferred one, else its text), anything else -> paragraph.

Example:
    >>> doc = UnstructuredExtractorConfig().build().extract(Path("memo.docx"))
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ragsys.extract.assemble import Part, assemble_page
from ragsys.extract.errors import (
    EmptyDocumentError,
    EncryptedError,
    MalformedError,
    UnsupportedFormatError,
)
from ragsys.extract.text import read_bytes
from ragsys.types import Document, Frozen, Page

UNSTRUCTURED_SUFFIXES = (".pdf", ".html", ".htm", ".md", ".txt", ".docx")
INSTALL_HINT = "pip install 'ragsys[unstructured]'"

Partition = Callable[..., list[Any]]


class UnstructuredExtractorConfig(Frozen):
    kind: Literal["unstructured"] = "unstructured"
    passwords: tuple[str, ...] = ()
    timeout_s: float = Field(default=300.0, gt=0)  # per file; enforced by `extract_many`
    # Address space of each extraction worker (`extract_many` with workers > 1); None: no cap.
    # An idle worker maps about 700 MB, so the floor is 1 GB.
    max_memory_mb: int | None = Field(default=4096, ge=1024)

    def build(self) -> UnstructuredExtractor:
        """Imports unstructured here, so a missing extra fails at build time, not per file."""
        _quiet_environment()
        try:
            from unstructured.partition.auto import partition
        except ImportError as exc:
            raise ImportError(f"the unstructured extractor needs the optional extra: {INSTALL_HINT}") from exc
        offline_sentence_splitter()
        return UnstructuredExtractor(self, partition)


def _quiet_environment() -> None:
    """unstructured reports usage to a third party and prints an advert unless told not to."""
    for var in ("SCARF_NO_ANALYTICS", "DO_NOT_TRACK", "UNSTRUCTURED_DISABLE_NOTICE"):
        os.environ.setdefault(var, "true" if var != "UNSTRUCTURED_DISABLE_NOTICE" else "1")


def offline_sentence_splitter() -> bool:
    """Gives unstructured a spaCy pipeline that needs no download, if its own model is missing.

    unstructured downloads spaCy's `en_core_web_sm` from GitHub on first use, which fails
    offline (ragsys's world); it only needs sentence boundaries from it in the fast strategy,
    so a blank English pipeline with a rule-based sentencizer stands in. This replaces a
    private hook (`unstructured.nlp.tokenize._get_nlp`): where the model is installed, or the
    hook is gone in a later release, nothing is changed. Returns whether the stand-in is used.
    """
    try:
        import spacy
        from unstructured.nlp import tokenize
    except ImportError:
        return False
    try:
        spacy.load("en_core_web_sm")
        return False
    except OSError:
        pass
    if not hasattr(tokenize, "_get_nlp"):
        return False
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    tokenize._get_nlp = lambda: nlp  # type: ignore[assignment]  # the cached loader it replaces
    return True


class UnstructuredExtractor:
    """Runs `partition(filename=..., strategy="fast")` and maps its elements to pages."""

    def __init__(self, config: UnstructuredExtractorConfig, partition: Partition) -> None:
        self.config = config
        self._partition = partition

    def extract(self, path: Path) -> Document:
        name, suffix = str(path), path.suffix.lower()
        if suffix not in UNSTRUCTURED_SUFFIXES:
            raise UnsupportedFormatError(name, f"'{suffix or path.name}' files are not supported")
        data = read_bytes(path)
        if not data.strip():
            raise EmptyDocumentError(name, "the file is empty")
        kwargs: dict[str, Any] = {"filename": name, "strategy": "fast"}
        if suffix == ".pdf":
            password = pdf_password(name, data, self.config.passwords)
            if password is not None:
                kwargs["password"] = password
        try:
            elements = self._partition(**kwargs)
        except ImportError as exc:  # a format whose optional parser is not installed
            raise UnsupportedFormatError(name, f"unstructured cannot read {suffix} here: {exc}") from exc
        except Exception as exc:  # unstructured wraps parser failures in many exception types
            raise MalformedError(
                name, f"unstructured could not parse it ({type(exc).__name__}: {exc})"
            ) from exc
        pages = elements_to_pages(elements)
        if not any(page.text for page in pages):
            raise EmptyDocumentError(name, "unstructured found no text")
        title = next((b.text for p in pages for b in p.blocks if b.kind == "heading"), "")
        return Document(
            id=name,
            source=name,
            title=title,
            page_count=len(pages),
            pages=tuple(pages),
            content_hash=hashlib.sha256(data).hexdigest(),
            extractor=self.config.kind,
        )


def elements_to_pages(elements: Sequence[Any]) -> list[Page]:
    """Group elements by `metadata.page_number` (1 when absent); pages in between stay empty."""
    by_page: dict[int, list[Part]] = defaultdict(list)
    for element in elements:
        part = element_part(element)
        if part is not None:
            metadata = getattr(element, "metadata", None)
            by_page[getattr(metadata, "page_number", None) or 1].append(part)
    last = max(by_page, default=1)
    return [assemble_page(n, by_page.get(n, []), has_text_layer=n in by_page) for n in range(1, last + 1)]


def element_part(element: Any) -> Part | None:
    category = getattr(element, "category", "")
    text = str(getattr(element, "text", "") or "")
    metadata = getattr(element, "metadata", None)
    if category == "Title":
        depth = getattr(metadata, "category_depth", None)
        return Part("heading", text, (depth or 0) + 1)
    if category == "Table":
        return Part("table", getattr(metadata, "text_as_html", None) or text)
    if category in ("PageBreak", "Image") or not text.strip():
        return None
    return Part("paragraph", text)


def pdf_password(name: str, data: bytes, passwords: Sequence[str]) -> str | None:
    """The first password that opens an encrypted PDF (None if it is not encrypted).

    Checked with PyMuPDF before partitioning: unstructured returns no elements for
    a wrongly unlocked file instead of raising, which would read as "no text".
    """
    import pymupdf  # a core dependency; imported here so this module loads without it

    try:
        doc = pymupdf.open(stream=data, filetype="pdf")  # type: ignore[no-untyped-call]
    except Exception:
        return None  # let unstructured report the damage in its own words
    with doc:
        if not doc.needs_pass:
            return None
        for password in passwords:
            if doc.authenticate(password):  # type: ignore[no-untyped-call]
                return password
    tried = f"none of the {len(passwords)} passwords given opens it" if passwords else "no password given"
    raise EncryptedError(name, f"the PDF is encrypted and {tried}")
