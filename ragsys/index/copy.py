"""A copy of an index re-embedded for another spec (e.g. a pipeline with a fine-tuned encoder).

An index holds vectors for the spec it was built with; a tuned encoder needs its own.
Re-indexing in place would take the old pipeline's vectors away from anyone still using
them, so the tuned pipeline gets a copy: the copy keeps the chunk store, BM25 and both
caches, and `index_paths` then embeds only what the new encoder has not seen.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ragsys.index.build import index_paths
from ragsys.index.errors import IndexError_
from ragsys.index.manifest import read_manifest
from ragsys.index.spec import IndexSpec
from ragsys.index.summary import IndexSummary
from ragsys.progress import Reporter


def copy_index(src: Path, dst: Path, spec: IndexSpec, reporter: Reporter | None = None) -> IndexSummary:
    """Copies `src` to `dst` (unless `dst` already is an index) and brings it up to date for `spec`.

    The sources are the ones `src` was built from, as its manifest records them.
    """
    manifest = read_manifest(src)
    sources = sorted({Path(d.source) for d in manifest.documents.values()})
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise IndexError_(src, f"source {missing[0]} is gone; re-index from the documents with --pipeline")
    if not (dst / "manifest.json").exists():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock", "*.partial"), dirs_exist_ok=True)
    return index_paths(sources, dst, spec, reporter=reporter)
