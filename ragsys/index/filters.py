"""Metadata filters: which documents a search may return, decided before top-k.

A filter maps a field to the values it accepts: `{"company": ("Apple*",), "period": ("2023 Q3",
"2023 Q2")}` keeps documents whose company matches `Apple*` AND whose period is one of the two
(AND across fields, OR within one). Values match case-insensitively and may be globs (`*`, `?`);
the field `doc` matches the document id as eval sets name gold documents (a file name, path
suffix or glob). A document without the field never matches it. A field written `!field`
excludes instead: `{"!doc": ("*AAPL*",)}` keeps every document but Apple's. On the command line
a filter is `--filter KEY=VALUE` (or `--filter '!KEY=VALUE'`), repeated.

Example:
    >>> accepts({"company": "Apple Inc.", "period": "2023 Q3"}, "a.pdf", parse_filters(["company=apple*"]))
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatch

from ragsys.docids import doc_matches

Filters = Mapping[str, Sequence[str]]


class FilterError(ValueError):
    """A filter is malformed; the message shows the expected KEY=VALUE form."""


def parse_filters(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`["company=AAPL", "period=2023 Q3", "period=2023 Q2"]` -> {field: (values, ...)}."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise FilterError(
                f"filter {item!r} is not KEY=VALUE, e.g. --filter company=AAPL --filter period='2023 Q3'"
            )
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return {k: tuple(v) for k, v in out.items()}


def merge_filters(base: Filters, override: Filters | None) -> dict[str, tuple[str, ...]]:
    """The pipeline's filters with a request's: a field the request names replaces the pipeline's."""
    merged = {k: tuple(v) for k, v in base.items()}
    merged.update({k.lower(): tuple(v) for k, v in (override or {}).items()})
    return {k: v for k, v in merged.items() if v}


def accepts(meta: Mapping[str, str], doc_id: str, filters: Filters) -> bool:
    """Whether a document with these fields passes every field's filter."""
    for key, values in filters.items():
        negated = key.startswith("!")
        if _matches(meta, doc_id, key.lstrip("!"), values) == negated:
            return False
    return True


def _matches(meta: Mapping[str, str], doc_id: str, field: str, values: Sequence[str]) -> bool:
    if field == "doc":
        return any(doc_matches(v, doc_id) for v in values)
    have = meta.get(field)
    return have is not None and any(fnmatch(have.lower(), v.lower()) for v in values)
