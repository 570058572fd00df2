"""Turn (kind, text, level) parts into a `Page` whose blocks index its text exactly.

Every extractor (PDF, text, unstructured) ends here, so the invariant
`page.text[b.start:b.end] == b.text`, with blocks separated by one blank line,
holds by construction rather than by each extractor's care.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ragsys.types import Block, BlockKind, Page

BLOCK_SEPARATOR = "\n\n"
_BLANK_LINES = re.compile(r"\n\s*\n")
# C0 controls other than tab/newline, DEL and C1 controls: PDFs leak them from broken encodings.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Part(NamedTuple):
    """A block before it has offsets."""

    kind: BlockKind
    text: str
    level: int = 0


def clean_block_text(text: str) -> str:
    """Strip control characters and blank lines, which would break the block separator."""
    text = _CONTROL.sub(" ", text).replace("\r\n", "\n").replace("\r", "\n")
    return _BLANK_LINES.sub("\n", text).strip()


def assemble_page(
    number: int, parts: Iterable[Part], *, has_text_layer: bool = True, ocr: bool = False
) -> Page:
    """Join cleaned, non-empty parts with `BLOCK_SEPARATOR`, recording each one's offsets."""
    blocks: list[Block] = []
    pieces: list[str] = []
    offset = 0
    for part in parts:
        text = clean_block_text(part.text)
        if not text:
            continue
        if pieces:
            pieces.append(BLOCK_SEPARATOR)
            offset += len(BLOCK_SEPARATOR)
        level = part.level if part.kind == "heading" else 0
        blocks.append(Block(kind=part.kind, text=text, start=offset, end=offset + len(text), level=level))
        pieces.append(text)
        offset += len(text)
    return Page(
        number=number, text="".join(pieces), blocks=tuple(blocks), has_text_layer=has_text_layer, ocr=ocr
    )
