"""BEIR-style `corpus.jsonl` as a corpus: one document per line (`_id`, `title`, `text`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ragsys.types import Block, Document, Page


def is_beir_corpus(path: Path) -> bool:
    """A `.jsonl` file whose first non-empty line is an object with `_id` and `text`."""
    if path.suffix != ".jsonl":
        return False
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    return isinstance(row, dict) and "_id" in row and "text" in row
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def row_document(row: dict[str, object], source: str) -> Document:
    """One page: the title as a level-1 heading block, then the text as a paragraph."""
    title = str(row.get("title") or "").strip()
    text = str(row.get("text") or "").strip()
    blocks: list[Block] = []
    parts: list[str] = []
    pos = 0
    for kind, part in (("heading", title), ("paragraph", text)):
        if not part:
            continue
        if parts:
            pos += 2
        blocks.append(
            Block(kind=kind, text=part, start=pos, end=pos + len(part), level=1 if kind == "heading" else 0)
        )  # type: ignore[arg-type]
        parts.append(part)
        pos += len(part)
    page_text = "\n\n".join(parts)
    digest = hashlib.sha256(json.dumps([title, text]).encode()).hexdigest()
    return Document(
        id=str(row["_id"]), source=source, title=title, page_count=1, content_hash=digest, extractor="beir",
        pages=(Page(number=1, text=page_text, blocks=tuple(blocks)),),
    )  # fmt: skip


def read_beir_corpus(path: Path) -> tuple[list[Document], list[tuple[str, str]]]:
    """Documents, and `(where, error)` for each bad line (bad lines are skipped, not fatal)."""
    docs: list[Document] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    source = str(path.resolve())
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append((where, f"not valid JSON ({e.msg}); fix or remove the line"))
                continue
            if (
                not isinstance(row, dict)
                or "_id" not in row
                or not str(row.get("text") or row.get("title") or "")
            ):
                errors.append((where, "a corpus line needs `_id` and a non-empty `text` or `title`"))
                continue
            if str(row["_id"]) in seen:
                errors.append((where, f"duplicate _id {row['_id']!r}; the first one is kept"))
                continue
            seen.add(str(row["_id"]))
            docs.append(row_document(row, source))
    return docs, errors
