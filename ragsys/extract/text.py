"""Plain text and markdown files: one page, blocks from blank lines and markdown syntax.

Markdown is read line by line, not rendered: ATX headings (`## Title`) become
heading blocks (level = number of `#`), pipe tables (a header row, a `|---|`
separator row, body rows) become table blocks, fenced code stays one paragraph
(a `#` inside it is not a heading), and everything else is split into paragraphs
at blank lines. Lines inside a paragraph keep their newlines: in markdown they
may be list items.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from ragsys.extract.assemble import Part, assemble_page
from ragsys.extract.errors import EmptyDocumentError, ExtractionError
from ragsys.types import BlockKind, Document

TEXT_SUFFIXES = (".txt", ".md")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def extract_text(path: Path, extractor: str = "pymupdf") -> Document:
    """A `.txt` or `.md` file as a one-page document."""
    data = read_bytes(path)
    text, warnings = decode_utf8(data)
    if not text.strip():
        raise EmptyDocumentError(str(path), "the file is empty or only white space")
    parts = list(markdown_parts(text) if path.suffix.lower() == ".md" else plain_parts(text))
    page = assemble_page(1, parts)
    title = next((p.text for p in page.blocks if p.kind == "heading" and p.level == 1), "")
    return Document(
        id=str(path),
        source=str(path),
        title=title,
        page_count=1,
        pages=(page,),
        content_hash=hashlib.sha256(data).hexdigest(),
        extractor=extractor,
        warnings=tuple(warnings),
    )


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an unreadable file is an extraction error, not a crash."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ExtractionError(str(path), f"cannot read the file ({exc.strerror or exc})") from exc


def decode_utf8(data: bytes) -> tuple[str, list[str]]:
    """UTF-8 (a BOM is dropped); invalid bytes become U+FFFD and are reported."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
        bad = text.count("\ufffd")
        return text, [f"not valid UTF-8: {bad} undecodable byte sequence(s) replaced with U+FFFD"]


def plain_parts(text: str) -> Iterator[Part]:
    """Paragraphs separated by blank lines."""
    for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        if chunk.strip():
            yield Part("paragraph", chunk)


def markdown_parts(text: str) -> Iterator[Part]:
    lines = text.replace("\r\n", "\n").split("\n")
    i, paragraph = 0, []
    while i < len(lines):
        line = lines[i]
        kind, end = _special_block(lines, i)
        if kind is None and line.strip():
            paragraph.append(line)
            i += 1
            continue
        if paragraph:
            yield Part("paragraph", "\n".join(paragraph))
            paragraph = []
        if kind == "heading":
            match = _HEADING.match(line)
            assert match is not None  # _special_block matched it
            yield Part("heading", match.group(2), len(match.group(1)))
        elif kind is not None:
            yield Part(kind, "\n".join(lines[i:end]))
        i = max(end, i + 1)
    if paragraph:
        yield Part("paragraph", "\n".join(paragraph))


def _special_block(lines: list[str], i: int) -> tuple[BlockKind | None, int]:
    """(kind, end line) of a heading, pipe table or fenced code starting at line i."""
    line = lines[i]
    if _HEADING.match(line):
        return "heading", i + 1
    if _FENCE.match(line):
        fence = line.strip()[:3]
        closing = (j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence))
        return "paragraph", next(closing, len(lines) - 1) + 1
    if "|" in line and i + 1 < len(lines) and "|" in lines[i + 1] and _TABLE_SEPARATOR.match(lines[i + 1]):
        end = i + 2
        while end < len(lines) and "|" in lines[end] and lines[end].strip():
            end += 1
        return "table", end
    return None, i
