"""The summary `ragsys index --json` prints on its last line."""

from __future__ import annotations

from ragsys.index.manifest import Manifest
from ragsys.index.plan import FileFailure, Plan
from ragsys.types import Frozen


class IndexSummary(Frozen):
    """`files_indexed` counts input documents present in the index after the run (new
    or unchanged); `pages` and `chunks` are totals of the whole index after the run."""

    files_indexed: int
    files_skipped_unchanged: int
    files_failed: tuple[FileFailure, ...]
    files_new_or_changed: int
    files_deleted: int
    documents: int
    pages: int
    chunks: int
    seconds: float
    generation: str
    timings: dict[str, float] = {}  # seconds per stage; "embed" is encoding alone
    chunks_embedded: int = 0  # embedding-cache misses encoded by this run
    embed_backends: dict[str, str] = {}  # dense model -> the runtime that embedded its passages

    @classmethod
    def of(
        cls,
        plan: Plan,
        manifest: Manifest,
        seconds: float,
        generation: str,
        timings: dict[str, float] | None = None,
        chunks_embedded: int = 0,
    ) -> IndexSummary:
        present = set(manifest.documents)
        indexed = len(plan.seen & present)
        return cls(
            files_indexed=indexed,
            files_skipped_unchanged=len(plan.unchanged),
            files_failed=tuple(plan.failures),
            files_new_or_changed=len((plan.seen & present) - set(plan.unchanged)),
            files_deleted=len(plan.deleted),
            documents=len(present),
            pages=manifest.pages,
            chunks=manifest.chunks,
            seconds=round(seconds, 3),
            generation=generation,
            timings=timings or {},
            chunks_embedded=chunks_embedded,
            embed_backends={r.model: r.backend for r in manifest.dense},
        )

    def cli_json(self) -> dict[str, object]:
        out = self.model_dump(mode="json")
        out["files_failed"] = [{"path": f.path, "error": f.error} for f in self.files_failed]
        return out
