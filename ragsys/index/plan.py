"""What a run must do: find the inputs, hash them, and compare with the current index."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragsys.index.corpus import is_beir_corpus, read_beir_corpus
from ragsys.index.manifest import DocEntry, Manifest
from ragsys.index.metadata import METADATA_FILE
from ragsys.types import Document, Frozen


class FileFailure(Frozen):
    path: str
    error: str


@dataclass
class Plan:
    """`todo` files need extraction; `corpus_docs` came ready from corpus.jsonl rows."""

    todo: list[tuple[Path, str]] = field(default_factory=list)  # (path, content hash)
    corpus_docs: list[Document] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # doc ids kept as they are
    deleted: list[str] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # every input doc id of this run

    @property
    def changes(self) -> bool:
        return bool(self.todo or self.corpus_docs or self.deleted)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / n for n in sorted(filenames) if not n.startswith("."))
    return out


def make_plan(paths: Sequence[Path], suffixes: Collection[str], prev: Manifest | None, rebuild: bool) -> Plan:
    """Sorts inputs into unchanged / to extract / failed, and finds deleted documents.

    Deletion is scoped to the paths given: a document indexed from another folder
    stays. `rebuild` (the extractor changed) sends every file back to extraction.
    """
    plan = Plan()
    known = prev.documents if prev is not None else {}
    scopes: list[Path] = []
    for given in paths:
        root = given.resolve()
        if not root.exists():
            plan.failures.append(FileFailure(path=str(given), error="no such file or directory"))
            continue
        scopes.append(root)
        for path in _walk(root) if root.is_dir() else [root]:
            _plan_file(path, suffixes, known, rebuild, plan)
    for doc_id, entry in known.items():
        src = Path(entry.source)
        in_scope = any(src == s or s in src.parents for s in scopes)
        if in_scope and doc_id not in plan.seen and not _failed_here(entry.source, plan):
            plan.deleted.append(doc_id)
    return plan


def _failed_here(source: str, plan: Plan) -> bool:
    # A file that is still there but failed to extract keeps its previous version.
    return any(f.path == source for f in plan.failures)


def _plan_file(
    path: Path, suffixes: Collection[str], known: Mapping[str, DocEntry], rebuild: bool, plan: Plan
) -> None:
    if path.name == METADATA_FILE:
        return  # the user's metadata for the documents beside it (ragsys.index.metadata), not one
    if is_beir_corpus(path):
        _plan_corpus(path, known, plan)
        return
    if path.suffix.lower() not in suffixes:
        plan.failures.append(
            FileFailure(path=str(path), error=f"unsupported file type {path.suffix or '(none)'!r}; "
                        f"supported: {', '.join(sorted(suffixes))} and BEIR corpus.jsonl")
        )  # fmt: skip
        return
    try:
        digest = file_hash(path)
    except OSError as e:
        plan.failures.append(
            FileFailure(path=str(path), error=f"cannot read: {e.strerror}; check permissions")
        )
        return
    doc_id = str(path)
    plan.seen.add(doc_id)
    entry = known.get(doc_id)
    if entry is not None and not rebuild and entry.content_hash == digest:
        plan.unchanged.append(doc_id)
    else:
        plan.todo.append((path, digest))


def _plan_corpus(path: Path, known: Mapping[str, DocEntry], plan: Plan) -> None:
    docs, errors = read_beir_corpus(path)
    plan.failures.extend(FileFailure(path=where, error=err) for where, err in errors)
    for doc in docs:
        plan.seen.add(doc.id)
        entry = known.get(doc.id)
        if entry is not None and entry.content_hash == doc.content_hash:
            plan.unchanged.append(doc.id)
        else:
            plan.corpus_docs.append(doc)
