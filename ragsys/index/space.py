"""Disk space for a run: what a new generation needs, and disk-full or I/O errors told apart.

A run writes a whole new generation beside the current one, so it needs room for about one
more generation. The estimate scales the current generation's size by the pages the new one
keeps, plus `BYTES_PER_CHAR` for each character of newly extracted text (chunk store, BM25
postings and vectors together). `index_paths` refuses up front when the disk has less free
than that, and when the disk fills up mid-run anyway it reports the larger of the estimate and
what had been written when it failed.

Disk full arrives in several shapes: `OSError(ENOSPC)` from Python and numpy writes and fsync,
`sqlite3.OperationalError` ("database or disk is full") from the chunk store and the caches,
and `RuntimeError` carrying strerror's text from faiss.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ragsys.index.errors import IndexError_, IndexSpaceError, IndexWriteError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
IO_ERRNOS = frozenset({errno.EIO, errno.EROFS})
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL = 8, 10, 13  # primary result codes (sqlite.org/rescode.html)
# Measured with the default pipeline (MiniLM, 384-d vectors): a 10-Q PDF (74k characters) makes a
# 700 kB generation, 8.2 bytes per character beyond the 94 kB that the 3k-character demo corpus
# takes in all (page text and blocks, chunk JSON, BM25 postings, vectors).
BYTES_PER_CHAR = 8
FIXED_BYTES = 96 * 1024  # SQLite pages, npz and JSON headers: what even a tiny generation takes
MARGIN = 1.1  # reported need = estimate plus a tenth: the caches grow too


def disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return _sqlite_code(exc) == SQLITE_FULL or "disk is full" in str(exc)
    if isinstance(exc, RuntimeError):  # faiss turns a failed fwrite into RuntimeError(strerror)
        return os.strerror(errno.ENOSPC) in str(exc)
    return False


def io_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in IO_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return _sqlite_code(exc) in (SQLITE_IOERR, SQLITE_READONLY) or "disk I/O error" in str(exc)
    return False


def _sqlite_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code; the low byte is the primary one
    return code & 0xFF if isinstance(code, int) else None


def tree_bytes(root: Path) -> int:
    """Bytes `root`'s files occupy on disk (allocated blocks); 0 when it does not exist."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            total += max(st.st_blocks * 512, st.st_size)
    return total


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{max(n, 0) / 1e3:.0f} kB"


@dataclass
class SpaceNeed:
    """What a run knows of the space it needs, refined as it goes (all sizes in bytes)."""

    index_dir: Path
    prev_generation: str | None = None
    prev_bytes: int = 0  # the current generation's size on disk
    estimate: int = 0  # the new generation's estimated size; 0 until extraction is done
    written: int = 0  # bytes of the new generation on disk when the run failed
    generation: str = ""  # the new generation's name, once chosen

    def set_estimate(self, prev_pages: int, kept_pages: int, new_chars: int) -> None:
        per_page = max(self.prev_bytes - FIXED_BYTES, 0) / prev_pages if prev_pages > 0 else 0.0
        self.estimate = FIXED_BYTES + int(per_page * kept_pages) + BYTES_PER_CHAR * new_chars

    def needed(self) -> int:
        return int(max(self.estimate or self.prev_bytes, self.written) * MARGIN)

    def check_free(self) -> None:
        """Refuses before writing anything when the disk holds less than the estimate."""
        free = free_bytes(self.index_dir)
        if self.estimate > free:
            raise self.space_error(free, "would not fit")

    def failure(self, exc: BaseException, current: str | None) -> IndexError_ | None:
        """The typed error for `exc` when it is disk full or an I/O error, else None.
        `current` is the generation the manifest names after the failed run cleaned up."""
        if disk_full(exc):
            return self.space_error(free_bytes(self.index_dir), "ran out of disk space", current)
        if io_failure(exc):
            return IndexWriteError(
                self.index_dir, f"the disk reported an I/O error while writing generation {self._gen()} "
                f"({exc}); check the disk (dmesg, fsck), then run `ragsys index` again "
                f"({_intact(current)})",
            )  # fmt: skip
        return None

    def space_error(self, free: int, what: str, current: str | None = None) -> IndexSpaceError:
        current = current if current is not None else self.prev_generation
        needed = self.needed()
        return IndexSpaceError(
            self.index_dir, f"generation {self._gen()} {what}: it needs about {human(needed)} and "
            f"{human(free)} is free on this disk; free some space or index into a --index DIR on a "
            f"bigger disk, then run `ragsys index` again: it resumes ({_intact(current)})",
            needed=needed, free=free,
        )  # fmt: skip

    def _gen(self) -> str:
        return self.generation or "(new)"


def _intact(current: str | None) -> str:
    if current is None:
        return "nothing had been indexed here yet"
    return f"generation {current} is intact and still searchable"
