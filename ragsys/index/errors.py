"""Typed errors of the on-disk index; each message names the directory and the fix."""

from __future__ import annotations

from pathlib import Path


class IndexError_(Exception):  # noqa: N801 - `IndexError` is a builtin we must not shadow
    """Base class: something is wrong with an index directory."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


class IndexLockedError(IndexError_):
    """Another process is writing this index."""


class IndexNotFoundError(IndexError_):
    """The directory holds no index (yet)."""


class IndexFormatError(IndexError_):
    """The index was written by an incompatible version, or is damaged."""


class MissingRepresentationError(IndexError_):
    """A pipeline asks for a retriever representation the index does not hold."""


class IndexSpaceError(IndexError_):
    """The disk filled up (or clearly would) while writing a generation; the current one is intact.

    `needed` and `free` are bytes: what the run needs (an estimate) and what the disk had left
    once the partly written generation was removed.
    """

    def __init__(self, path: Path | str, message: str, needed: int, free: int) -> None:
        super().__init__(path, message)
        self.needed, self.free = needed, free


class IndexWriteError(IndexError_):
    """The disk reported an I/O error while writing a generation; the current one is intact."""
