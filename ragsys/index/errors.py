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
