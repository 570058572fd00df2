"""PDF extraction with PyMuPDF (the default extractor; it also takes .txt and .md).

Per page: text in reading order (columns one after another, see `order.py`),
headings by font size and weight (`headings.py`), tables as markdown from
`page.find_tables()`. Failures are typed (`errors.py`) and name the fix; pages
that cannot be read are skipped with a warning rather than failing the file.

Example:
    >>> doc = PdfExtractorConfig(passwords=("secret",)).build().extract(Path("report.pdf"))
    >>> doc.pages[0].blocks[0].kind
    'heading'
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ragsys.extract.assemble import Part, assemble_page
from ragsys.extract.errors import (
    EmptyDocumentError,
    EncryptedError,
    ExtractionError,
    MalformedError,
    UnsupportedFormatError,
    is_out_of_memory,
    out_of_memory,
)
from ragsys.extract.headings import HeadingStyle, Line, block_parts, heading_style
from ragsys.extract.text import TEXT_SUFFIXES, extract_text, read_bytes
from ragsys.types import Document, Frozen, Page

# PyMuPDF (and page.py, which reads pages with it) loads when an extractor is built, not when a
# pipeline config that names this one is read: `ragsys search` and `ragsys --help` never extract.
if TYPE_CHECKING:
    import pymupdf

    from ragsys.extract.page import PageContent

PDF_SUFFIXES = (".pdf",)
SUPPORTED_SUFFIXES = PDF_SUFFIXES + TEXT_SUFFIXES
_OCR_DPI = 300
_UNMAPPED_SHARE = 0.3  # pages where this share of characters has no unicode mapping are flagged
_REPAIRED = "the file was damaged; PyMuPDF repaired it, text may be incomplete"
_OUT_OF_MEMORY = "ran out of memory"


class PdfExtractorConfig(Frozen):
    kind: Literal["pymupdf"] = "pymupdf"
    tables: bool = True
    # Skip find_tables on pages with fewer than two rows of side-by-side text: same
    # table count on the 20 SEC filings, about a third less table time.
    table_prefilter: bool = True
    ocr: Literal["auto", "off"] = "auto"  # auto: OCR pages without text if tesseract is installed
    passwords: tuple[str, ...] = ()
    timeout_s: float = Field(default=300.0, gt=0)  # per file; enforced by `extract_many`
    # Address space of each extraction worker (`extract_many` with workers > 1); None: no cap.
    # An idle worker maps about 700 MB, so the floor is 1 GB.
    max_memory_mb: int | None = Field(default=4096, ge=1024)

    def build(self) -> PdfExtractor:
        """Loads PyMuPDF (here, so a spawned worker pays for it before its first file: pool.py),
        finds tesseract's language data once; with tables, makes the layout model lean (runtime.py)."""
        import pymupdf  # noqa: F401

        from ragsys.extract.runtime import use_lean_layout_model

        if self.tables:
            use_lean_layout_model()
        return PdfExtractor(self, tessdata=find_tessdata() if self.ocr == "auto" else None)


def find_tessdata() -> str | None:
    """Tesseract's language folder, or None when tesseract is not installed."""
    if shutil.which("tesseract") is None:
        return None
    import pymupdf

    try:
        return str(pymupdf.get_tessdata())  # type: ignore[no-untyped-call]
    except Exception:  # get_tessdata raises a bare RuntimeError when nothing is found
        return None


class PdfExtractor:
    """Extracts one PDF, .txt or .md file into a `Document`.

    `tessdata` is tesseract's language folder; None means OCR is unavailable and
    pages without a text layer are reported in `Document.warnings`.
    """

    def __init__(self, config: PdfExtractorConfig, tessdata: str | None = None) -> None:
        self.config = config
        self._tessdata = tessdata if config.ocr == "auto" else None

    def extract(self, path: Path) -> Document:
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            return extract_text(path, extractor=self.config.kind)
        if suffix not in PDF_SUFFIXES:
            raise UnsupportedFormatError(str(path), f"'{suffix or path.name}' files are not supported")
        data = read_bytes(path)
        limit = self.config.max_memory_mb
        with _open_pdf(str(path), data, self.config.passwords, limit) as doc:
            try:
                return self._extract(str(path), data, doc)
            except RuntimeError as exc:  # MuPDF failing outside a page: metadata, the page tree
                raise _unopenable(str(path), exc, limit, "reading") from exc

    def _extract(self, name: str, data: bytes, doc: pymupdf.Document) -> Document:
        warnings = [_REPAIRED] if doc.is_repaired else []
        contents: list[PageContent | None] = []
        ocr_pages: set[int] = set()
        for index in range(doc.page_count):
            content, used_ocr = self._page(doc, index, warnings)
            contents.append(content)
            if used_ocr:
                ocr_pages.add(index + 1)
        style = heading_style(_lines(contents))
        pages = tuple(_page(i + 1, c, style, (i + 1) in ocr_pages) for i, c in enumerate(contents))
        warnings.extend(self._text_layer_warnings(pages, ocr_pages))
        if not any(page.text for page in pages):
            if any(_OUT_OF_MEMORY in w for w in warnings):
                raise out_of_memory(name, self.config.max_memory_mb, "no page could be read within it")
            if doc.is_repaired:
                raise MalformedError(name, "the file is damaged and no text survived PyMuPDF's repair")
            raise EmptyDocumentError(name, self._no_text_reason(pages))
        metadata = doc.metadata or {}
        return Document(
            id=name,
            source=name,
            title=(metadata.get("title") or "").strip() or _first_heading(pages),
            author=(metadata.get("author") or "").strip(),
            page_count=doc.page_count,
            pages=pages,
            content_hash=hashlib.sha256(data).hexdigest(),
            extractor=self.config.kind,
            warnings=tuple(warnings),
        )

    def _page(
        self, doc: pymupdf.Document, index: int, warnings: list[str]
    ) -> tuple[PageContent | None, bool]:
        """One page's content, OCR'd when it has no text layer; None when unreadable."""
        from ragsys.extract.page import page_content

        try:
            page = doc.load_page(index)  # type: ignore[no-untyped-call]
            content = page_content(page, tables=self.config.tables, prefilter=self.config.table_prefilter)
        except Exception as exc:  # MuPDF raises plain RuntimeErrors for broken content streams
            warnings.append(f"page {index + 1}: {self._unreadable(exc)} ({type(exc).__name__}: {exc})")
            return None, False
        warnings.extend(f"page {index + 1}: {problem}" for problem in content.problems)
        if content.chars and content.unmapped >= _UNMAPPED_SHARE * content.chars:
            warnings.append(f"page {index + 1}: most glyphs have no unicode mapping; its text is unreliable")
        if content.chars == 0 and self._tessdata is not None and _has_graphics(page):
            try:
                return self._ocr(page), True
            except Exception as exc:  # tesseract failures surface as RuntimeError
                reason = self._unreadable(exc) if is_out_of_memory(exc) else "OCR failed"
                warnings.append(f"page {index + 1}: {reason} ({type(exc).__name__}: {exc})")
        return content, False

    def _unreadable(self, exc: Exception) -> str:
        if not is_out_of_memory(exc):
            return "could not be read"
        limit = self.config.max_memory_mb
        return f"{_OUT_OF_MEMORY} ({f'max_memory_mb={limit}' if limit else 'no cap'}), skipped"

    def _ocr(self, page: pymupdf.Page) -> PageContent:
        from ragsys.extract.page import TEXT_FLAGS, page_content

        ocr = page.get_textpage_ocr  # untyped in PyMuPDF
        textpage = ocr(flags=TEXT_FLAGS, dpi=_OCR_DPI, full=True, tessdata=self._tessdata)  # type: ignore[no-untyped-call]
        return page_content(page, tables=False, prefilter=False, textpage=textpage)

    def _text_layer_warnings(self, pages: Sequence[Page], ocr_pages: set[int]) -> list[str]:
        missing = [p.number for p in pages if not p.has_text_layer and not p.ocr]
        warnings = []
        if ocr_pages:
            warnings.append(f"no text layer on {_page_list(sorted(ocr_pages))}: text from OCR")
        if missing:
            warnings.append(
                f"no text layer (scanned or blank) on {_page_list(missing)}; {self._why_no_ocr()}"
            )
        return warnings

    def _why_no_ocr(self) -> str:
        if self.config.ocr == "off":
            return "OCR is off"
        if self._tessdata is None:
            return "OCR is unavailable (tesseract not found)"
        return "blank, or OCR failed"

    def _no_text_reason(self, pages: Sequence[Page]) -> str:
        if not any(p.has_text_layer or p.ocr for p in pages):
            return f"no page has a text layer (scanned?) and {self._why_no_ocr()}"
        if not any(p.has_text_layer for p in pages):
            return "no page has a text layer and OCR found no words: blank, or OCR failed"
        return "no extractable text on any page"


def _open_pdf(name: str, data: bytes, passwords: Sequence[str], limit_mb: int | None) -> pymupdf.Document:
    """Open (MuPDF repairs broken cross-reference tables on open) and authenticate."""
    import pymupdf

    if not data:
        raise EmptyDocumentError(name, "the file is empty (0 bytes)")
    if b"%PDF" not in data[:1024]:
        raise UnsupportedFormatError(
            name, f"not a PDF: no %PDF header (the content looks like {_sniff(data)})"
        )
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise _unopenable(name, exc, limit_mb) from exc
    try:
        _check_openable(name, doc, passwords)
    except Exception as exc:
        doc.close()  # type: ignore[no-untyped-call]
        if isinstance(exc, ExtractionError):
            raise
        raise _unopenable(name, exc, limit_mb) from exc
    return doc


def _check_openable(name: str, doc: pymupdf.Document, passwords: Sequence[str]) -> None:
    """Authenticate and count pages; a broken page tree makes `page_count` raise."""
    if doc.needs_pass and not any(doc.authenticate(pw) for pw in passwords):  # type: ignore[no-untyped-call]
        tried = f"none of the {len(passwords)} passwords given opens it" if passwords else "no password given"
        raise EncryptedError(name, f"the PDF is encrypted and {tried}")
    if doc.page_count == 0:
        raise EmptyDocumentError(name, "the PDF has no pages")


def _unopenable(name: str, exc: Exception, limit_mb: int | None, doing: str = "opening") -> ExtractionError:
    if is_out_of_memory(exc):
        return out_of_memory(name, limit_mb, f"while {doing} it: {exc}")
    what = "open or repair it" if doing == "opening" else "read it after opening it"
    return MalformedError(name, f"PyMuPDF could not {what} ({exc})")


def _page(number: int, content: PageContent | None, style: HeadingStyle, ocr: bool) -> Page:
    from ragsys.extract.page import TableUnit

    if content is None:
        return assemble_page(number, [], has_text_layer=False)
    parts: list[Part] = []
    for unit in content.units:
        if isinstance(unit, TableUnit):
            parts.append(Part("table", unit.markdown))
        else:
            parts.extend(block_parts(unit.lines, style))
    return assemble_page(number, parts, has_text_layer=content.chars > 0 and not ocr, ocr=ocr)


def _lines(contents: Sequence[PageContent | None]) -> Iterator[Line]:
    from ragsys.extract.page import TextUnit

    for content in contents:
        for unit in content.units if content is not None else ():
            if isinstance(unit, TextUnit):
                yield from unit.lines


def _has_graphics(page: pymupdf.Page) -> bool:
    """Images or vector paths: something OCR could read (a blank page has neither).

    `get_images` looks the page up by number, which raises ValueError on a page tree that
    the fuzzer broke (eval/bench/fuzz_pdfs.py) even though the page itself loaded.
    """
    for probe in (page.get_images, page.get_drawings):
        try:
            if probe():
                return True
        except (RuntimeError, ValueError):
            continue
    return False


def _first_heading(pages: Sequence[Page]) -> str:
    """Fallback title: the largest heading on the first page that has any."""
    for page in pages:
        headings = [b for b in page.blocks if b.kind == "heading"]
        if headings:
            return min(headings, key=lambda b: b.level).text
    return ""


def _page_list(numbers: Sequence[int]) -> str:
    """'page 3' or 'pages 1, 2, 5' (the first 20, then a count)."""
    shown = ", ".join(str(n) for n in numbers[:20])
    more = f" and {len(numbers) - 20} more" if len(numbers) > 20 else ""
    return f"page {shown}" if len(numbers) == 1 else f"pages {shown}{more}"


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    for magic, kind in (
        (b"pk\x03\x04", "a ZIP/Office file"),
        (b"<", "HTML/XML"),
        (b"\x89png", "a PNG image"),
    ):
        if head.startswith(magic):
            return kind
    if head.startswith(b"\xff\xd8"):
        return "a JPEG image"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return "plain text"
