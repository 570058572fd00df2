"""The eval-set format: one JSON object per line, one question per object.

Fields: `id`, `question`, `split` (required); `answer`, `label`, `meta` (optional);
`gold_doc_ids`, `gold_chunk_ids`, `gold_pages` (lists, may be empty or absent).

A gold document id is either an exact `Document.id` (a SciFact `_id`, a PubMedQA
PMID, a file path as indexed) or, for files, a name or glob such as SEC 10-Q's
`*2023 Q3 AAPL*`; `doc_matches` is the one place that decides whether a retrieved
document satisfies it.

Example::

    items = load_eval_set("data/scifact.jsonl", splits={"test"})
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragsys.docids import doc_matches, is_glob
from ragsys.types import Frozen

__all__ = ["EvalItem", "doc_matches", "is_glob"]  # doc_matches/is_glob: imported from here before docids.py


class EvalSetError(ValueError):
    """A malformed eval-set file; the message names the file and the 1-based line."""


class GoldPage(Frozen):
    """A page that holds the answer: `page` is 1-based, like `Page.number`."""

    doc: str
    page: int


class EvalItem(Frozen):
    """One question with whatever gold evidence its source provides."""

    id: str
    question: str
    split: str
    answer: str | None = None
    label: str | None = None  # a closed-set answer such as PubMedQA's yes/no/maybe
    gold_doc_ids: tuple[str, ...] = ()
    gold_chunk_ids: tuple[str, ...] = ()
    gold_pages: tuple[GoldPage, ...] = ()
    # An unanswerable question: searched without these documents (the ones that hold its answer),
    # so the passages cannot answer it and the right reply is an abstention.
    answerable: bool = True
    exclude_doc_ids: tuple[str, ...] = ()
    meta: dict[str, Any] = {}


class EvalSetReader:
    """Reads an eval-set file and records every split filter it was asked for.

    The record (`requested_splits`) lets a test prove that tuning code never asked
    for the test split.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.requested_splits: list[frozenset[str] | None] = []

    def read(self, splits: Collection[str] | None = None) -> list[EvalItem]:
        wanted = None if splits is None else frozenset(splits)
        self.requested_splits.append(wanted)
        items = _parse_lines(self.path)
        if wanted is None:
            return items
        chosen = [item for item in items if item.split in wanted]
        if items and not chosen:
            have = sorted({item.split for item in items})
            raise EvalSetError(f"{self.path}: no items in splits {sorted(wanted)}; the file has {have}")
        return chosen

    def split_names(self) -> list[str]:
        """The split names in the file (nothing else about any item is returned)."""
        return sorted({item.split for item in _parse_lines(self.path)})

    def split_sizes(self) -> dict[str, int]:
        """How many items each split has (nothing else about any item is returned): what a
        tune run plans its report's time by without reading the test split."""
        return dict(sorted(Counter(item.split for item in _parse_lines(self.path)).items()))


def load_eval_set(path: str | Path, splits: Collection[str] | None = None) -> list[EvalItem]:
    """All items of `path`, or only those whose split is in `splits`."""
    return EvalSetReader(path).read(splits)


def save_eval_set(items: Iterable[EvalItem], path: str | Path) -> None:
    """Writes one object per line; unset optional fields are left out."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item.model_dump(mode="json", exclude_none=True), ensure_ascii=False) + "\n")


def _parse_lines(path: Path) -> list[EvalItem]:
    """Parses every non-blank line, failing at the first bad one with its line number."""
    if not path.is_file():
        raise EvalSetError(f"{path}: eval-set file not found")
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            item = _parse_line(path, lineno, line)
            if item.id in seen:
                raise EvalSetError(
                    f"{path}:{lineno}: duplicate id {item.id!r} (first on line {seen[item.id]})"
                )
            seen[item.id] = lineno
            items.append(item)
    return items


def _parse_line(path: Path, lineno: int, line: str) -> EvalItem:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise EvalSetError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(obj, dict):
        raise EvalSetError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    try:
        return EvalItem.model_validate(obj)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()
        )
        raise EvalSetError(f"{path}:{lineno}: {problems}") from e


def gold_doc_ids(item: EvalItem, doc_ids: Sequence[str], known: set[str]) -> list[str]:
    """The index's documents an item names as gold: exact ids directly, globs by matching."""
    found: list[str] = []
    for g in item.gold_doc_ids:
        if is_glob(g):
            found.extend(d for d in doc_ids if doc_matches(g, d))
        elif g in known:
            found.append(g)
    return list(dict.fromkeys(found))
