"""An exclusive writer lock: two `ragsys index` runs on one directory would race.

`fcntl.flock` is released by the kernel when the process dies, so a `kill -9`
never leaves a stale lock behind (unlike a pid file).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ragsys.index.errors import IndexLockedError


class WriterLock:
    """Context manager holding `DIR/.lock` exclusively, failing at once if taken."""

    def __init__(self, index_dir: Path) -> None:
        self._path = index_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLockedError(
                self._path.parent, "another process is writing this index; wait for it to finish"
            ) from None
        try:  # the pid is for people reading the file; the flock is the lock
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass  # a full disk must not stop the run here: it fails later with the space it needs
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
