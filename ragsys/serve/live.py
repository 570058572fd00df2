"""The generation and pipeline `ragsys serve` answers from, swapped in without a restart after a
re-index or a `POST /admin/pipeline`.

Each request pins one `Snapshot` (an open `Index`, the `Pipeline` built over it and that
pipeline's version) for its whole duration, so its hits, citations and pages all come from one
generation and one whole pipeline, old or new, never a mix. Every pin stats `manifest.json`
(microseconds); when the manifest changed, one background thread opens the generation it
names, builds the retrievers over it (reranker and generator are shared, not reloaded) and
swaps it in under a lock. Requests keep using the old
snapshot meanwhile. A replaced snapshot is closed once the last request pinning it is done,
which gives its generation's lease back (`ragsys.index.lease`), so the next `ragsys index` run
may remove it. A pipeline swap (`swap_pipeline`) builds the new pipeline over the current
generation and swaps it in the same way; both swaps are serialized, so neither can install a
snapshot built from what the other just replaced. Snapshots that share a generation share its
lease: it is given back when the last of them is done.

Example:
    >>> live = LiveIndex(config.build(index, generator=True), index)  # doctest: +SKIP
    >>> with live.pinned() as snap:  # doctest: +SKIP
    ...     hits = snap.pipeline.search("net sales")
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ragsys.index.filters import Filters
from ragsys.index.manifest import MANIFEST
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.protocols import OnText
from ragsys.types import Answer

log = logging.getLogger(__name__)
Stamp = tuple[int, int, int] | None  # the manifest's inode, mtime and size: it is replaced, never edited


@dataclass(eq=False)
class Snapshot:
    """One generation, open, with the pipeline over it; `refs` requests use it now."""

    pipeline: Pipeline
    index: Index
    opened_here: bool
    version: str  # pipeline.config.version(): what answers from this snapshot are recorded against
    refs: int = 0
    retired: bool = False  # a newer snapshot replaced it: it is done when `refs` drops to 0

    @property
    def generation(self) -> str:
        return self.index.manifest.generation


class LiveIndex:
    """The server's view of its index. The `index` passed in becomes the server's: it is closed
    when a newer generation replaced it and no request uses it any more."""

    def __init__(self, pipeline: Pipeline, index: Index) -> None:
        self._current = Snapshot(pipeline, index, opened_here=False, version=pipeline.config.version())
        self._lock = threading.Lock()
        self._swap = threading.Lock()  # one swap (generation or pipeline) at a time
        self._users = {id(index): 1}  # snapshots not yet done, per open index
        self._seen = _stamp(index.path)
        self._loading = False
        self.reload_error: str | None = None  # why the last new generation could not be opened

    @property
    def config(self) -> PipelineConfig:
        return self._current.pipeline.config

    def current(self) -> Snapshot:
        """The snapshot new requests get (unpinned: read its manifest, nothing that may close)."""
        self._check()
        return self._current

    @contextmanager
    def pinned(self) -> Iterator[Snapshot]:
        """The current snapshot, kept open until the block ends."""
        self._check()
        with self._lock:
            snap = self._current
            snap.refs += 1
        try:
            yield snap
        finally:
            with self._lock:
                snap.refs -= 1
                gone = self._done(snap) if snap.retired and snap.refs == 0 else None
            if gone is not None:
                gone.close()

    def answer(self, query: str, k: int | None = None, filters: Filters | None = None) -> Answer:
        with self.pinned() as snap:
            return snap.pipeline.answer(query, k, filters)

    def stream(
        self, query: str, k: int | None, on_text: OnText | None, filters: Filters | None = None
    ) -> Answer:
        with self.pinned() as snap:
            return snap.pipeline.stream(query, k, on_text, filters)

    def refresh(self) -> bool:
        """Opens the generation the manifest names now and swaps it in; True when it was new."""
        with self._swap:
            with self._lock:
                current = self._current
                self._seen = _stamp(current.index.path)  # a manifest that fails to open is not retried
            index = Index.open(current.index.path)
            if index.manifest.generation == current.generation:
                index.close()
                return False
            try:
                fresh = Snapshot(
                    current.pipeline.over(index), index, opened_here=True, version=current.version
                )
            except BaseException:
                index.close()
                raise
            self._install(fresh)
            return True

    def swap_pipeline(self, build: Callable[[Index], Pipeline]) -> tuple[Snapshot, Snapshot]:
        """Builds a pipeline over the current generation (`build`, the slow model load: requests
        keep being answered by the old one meanwhile) and swaps it in; returns (old, new)."""
        with self._swap:
            current = self._current  # only swaps replace it, and this one holds the swap lock
            pipeline = build(current.index)
            fresh = Snapshot(pipeline, current.index, current.opened_here, version=pipeline.config.version())
            with self._lock:
                self._users[id(current.index)] += 1
            self._install(fresh)
            return current, fresh

    def _install(self, fresh: Snapshot) -> None:
        with self._lock:
            old, self._current = self._current, fresh
            self._users.setdefault(id(fresh.index), 1)
            old.retired = True
            gone = self._done(old) if old.refs == 0 else None
        if gone is not None:
            gone.close()

    def _done(self, snap: Snapshot) -> Index | None:
        """Under the lock, once `snap` is retired and unused: its index, if no snapshot needs it now."""
        key = id(snap.index)
        self._users[key] -= 1
        if self._users[key] > 0:
            return None
        del self._users[key]
        return snap.index

    def close(self) -> None:
        """At shutdown: closes the current generation if this object opened it."""
        with self._lock:
            snap = self._current
            snap.retired = snap.opened_here  # the caller's own index stays the caller's to close
            gone = self._done(snap) if snap.retired and snap.refs == 0 else None
        if gone is not None:
            gone.close()

    def _check(self) -> None:
        stamp = _stamp(self._current.index.path)
        with self._lock:
            if stamp == self._seen or self._loading:
                return
            self._loading = True
        threading.Thread(target=self._reload, name="ragsys-reload", daemon=True).start()

    def _reload(self) -> None:
        try:
            self.refresh()
            self.reload_error = None
        except Exception as e:  # keep serving the generation we have; say why in the log
            self.reload_error = f"{type(e).__name__}: {e}"
            log.warning("kept serving generation %s: the new one could not be opened: %s",
                        self._current.generation, e)  # fmt: skip
        finally:
            with self._lock:
                self._loading = False


def _stamp(index_dir: Path) -> Stamp:
    try:
        st = os.stat(index_dir / MANIFEST)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
