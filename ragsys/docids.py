"""Naming documents: a gold id, a metadata row's `file` or a filter value matches a document id
(the file's path as indexed, or a corpus row's `_id`) by exact id, path suffix or glob."""

from __future__ import annotations

from fnmatch import fnmatchcase

_GLOB_CHARS = frozenset("*?[")


def is_glob(gold: str) -> bool:
    """True when a gold id is a pattern standing for several documents."""
    return any(c in _GLOB_CHARS for c in gold)


def doc_matches(gold: str, doc_id: str) -> bool:
    """Does `doc_id` satisfy the gold id `gold`?

    Exact ids win; a plain name also matches a path ending in "/name" (gold files are
    named relative to wherever they were indexed from); a glob without "/" is matched
    against the basename, one with "/" against the whole id or any "/"-suffix. Matching is
    case-sensitive so results do not depend on the OS.
    """
    if gold == doc_id:
        return True
    if is_glob(gold) and "/" not in gold:
        return fnmatchcase(doc_id.rsplit("/", 1)[-1], gold)
    if is_glob(gold):
        return fnmatchcase(doc_id, gold) or fnmatchcase(doc_id, "*/" + gold)
    return doc_id.endswith("/" + gold)
