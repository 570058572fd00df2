"""Reader leases on generation directories, so a writer never removes one in use.

A reader (`Index.open`) holds a shared `flock` on its generation's directory for as long as it
uses it; the writer's cleanup takes an exclusive, non-blocking `flock` on each older
generation and skips the ones it cannot get, removing them on a later run. `flock` locks
belong to an open file description, so this works between threads of one process (the server
re-indexed in-process) as well as between processes, and the kernel drops them when a reader
dies. Locking the directory itself needs no write access and no lease file in the index.

A generation is removed by renaming it to `NAME.removing` while the exclusive lock is held, so
a reader that opened the directory just before it is taken away finds its name gone once it
has its lock and goes back to the manifest (`take_lease` returns None).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

REMOVING = ".removing"


class Lease:
    """A shared lock on one generation directory; `release` (or process exit) gives it back."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def take_lease(gen_dir: Path) -> Lease | None:
    """A shared lease on `gen_dir`, or None when the directory is gone or being removed."""
    try:
        fd = os.open(gen_dir, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a writer renames the directory away
    except OSError:  # no flock on directories here (some NFS setups): read unleased; the writer
        pass  # cannot take its exclusive lock here either, so it removes nothing
    try:
        same = os.stat(gen_dir).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return Lease(fd)


def remove_if_unleased(gen_dir: Path) -> bool:
    """Removes `gen_dir` unless a reader holds a lease on it; True when it is gone."""
    if gen_dir.name.endswith(REMOVING):  # a removal interrupted by a crash: nobody can lease it
        shutil.rmtree(gen_dir, ignore_errors=True)
        return not gen_dir.exists()
    try:
        fd = os.open(gen_dir, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: a reader still uses it, a later run removes it;
            return False  # any other: this filesystem cannot tell, so keep it
        doomed = gen_dir.with_name(gen_dir.name + REMOVING)
        shutil.rmtree(doomed, ignore_errors=True)  # left by an earlier crash: replace needs it gone
        os.replace(gen_dir, doomed)
    finally:
        os.close(fd)
    shutil.rmtree(doomed, ignore_errors=True)
    return True
