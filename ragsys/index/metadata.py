"""Document metadata: fields read off each document by stated rules, editable by the user.

Every indexed document gets, where its file name, PDF metadata or first page give them:

* `file`: the source file's name ("2023 Q3 AAPL.pdf"); always set.
* `form`: a filing form named on the first page ("FORM 10-Q" -> "10-Q"), in the PDF subject
  ("Form 10-Q filed on ...") or in the file name; one of `FORMS`.
* `period_end`: the date a period ends, from the first page ("For the quarterly period ended
  July 1, 2023", "For the fiscal year ended ...") or the PDF subject ("for the period ending
  2023-07-01"), as YYYY-MM-DD.
* `period`: a fiscal year and quarter named in the file name ("2023 Q3", "Q3-2023",
  "FY2023" -> "2023 Q3", "2023 FY"); else the year of `period_end`.
* `company`: on the first page, the name between "Commission File Number ..." and "(Exact name
  of registrant as specified in its charter)", else the line above the latter, else the first
  line after the former;
* `ticker`: an upper-case token of 1-5 letters in the file name that is not a quarter, form
  or year ("AAPL").
* `title`: the PDF's title when it reads as words (not an accession number or a file name);
  else "company form period" when those are known; else the first line of the first page;
  else the file's stem.

A `metadata.jsonl` beside the corpus (in a folder being indexed, or beside a file being
indexed) overrides or adds fields, one JSON object per line with `file` (a file name, path
suffix or glob as in eval sets) and any string fields: `{"file": "2023 Q3 AAPL.pdf",
"company": "Apple"}`. Its content is part of the index's signature, so editing it re-indexes.

Example:
    >>> derive_metadata("reports/2023 Q3 AAPL.pdf", "", "FORM 10-Q")["ticker"]
    'AAPL'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path, PurePath

from ragsys.docids import doc_matches
from ragsys.types import Document

METADATA_FILE = "metadata.jsonl"
RULES_VERSION = "1"  # part of the index signature: changed rules re-derive every document's fields
FORMS = ("10-K", "10-Q", "8-K", "20-F", "40-F", "6-K", "S-1", "DEF 14A", "ARS")
FIRST_PAGE_CHARS = 6000  # the cover page; a filing's later pages mention other forms and periods
_FORM = re.compile(r"\bFORM\s+(10-K|10-Q|8-K|20-F|40-F|6-K|S-1|DEF\s+14A)\b", re.IGNORECASE)
_FORM_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(10-?K|10-?Q|8-?K|20-?F|40-?F|6-?K)(?![A-Za-z0-9])", re.IGNORECASE
)
_ENDED = re.compile(
    r"period\s+end(?:ed|ing)\s+([A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})"
    r"|fiscal\s+year\s+ended\s+([A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
_QUARTER_YEAR = re.compile(
    r"(?<![A-Za-z0-9])(?:Q([1-4])[\s_-]*((?:19|20)\d\d)|((?:19|20)\d\d)[\s_-]*Q([1-4]))(?![0-9])"
)
_FISCAL_YEAR = re.compile(r"(?<![A-Za-z0-9])FY[\s_-]*((?:19|20)\d\d|\d\d)(?![0-9])", re.IGNORECASE)
_BETWEEN = re.compile(
    r"file number:?\s*[\d-]+\s+([^\n(]{2,120}?)\s*\(exact name of registrant", re.IGNORECASE
)
_REGISTRANT = re.compile(r"\n([^\n]{2,120})\n\s*\(exact name of registrant", re.IGNORECASE)
_AFTER_FILE_NUMBER = re.compile(
    r"commission file number[^\n]*\n(?:[\s\u00a0]*\n)*([^\n]{2,120})", re.IGNORECASE
)
_TICKER = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,5})(?![A-Za-z0-9])")
_NOT_TICKERS = {"Q", "FY", "K", "F", "S", "DEF", "ARS", "PDF", "THE", "AND", "INC", "CORP", "LTD"}


def derive_metadata(source: str, pdf_title: str, first_page: str, pdf_subject: str = "") -> dict[str, str]:
    """The fields the module docstring lists that this document's name and first page give."""
    name = PurePath(source).name
    stem = PurePath(source).stem
    cover = first_page[:FIRST_PAGE_CHARS]
    meta: dict[str, str] = {"file": name}
    form = _form(cover, pdf_subject, stem)
    if form:
        meta["form"] = form
    end = _period_end(cover, pdf_subject)
    if end:
        meta["period_end"] = end
    period = _period(stem) or (end[:4] if end else "")
    if period:
        meta["period"] = period
    registrant = (
        _BETWEEN.search(cover) or _REGISTRANT.search("\n" + cover) or _AFTER_FILE_NUMBER.search(cover)
    )
    if registrant and registrant.group(1).strip():
        meta["company"] = " ".join(registrant.group(1).split())
    ticker = _ticker(stem)
    if ticker:
        meta["ticker"] = ticker
    meta["title"] = _title(pdf_title, meta, cover, stem)
    return meta


def _form(cover: str, subject: str, stem: str) -> str:
    for text, pattern in ((cover, _FORM), (subject, _FORM), (stem, _FORM_IN_NAME)):
        found = pattern.search(text)
        if found:
            form = " ".join(found.group(1).upper().split())
            return form if "-" in form or " " in form else f"{form[:-1]}-{form[-1]}"
    return ""


def _period_end(cover: str, subject: str) -> str:
    found = _ENDED.search(cover)
    if found:
        text = " ".join((found.group(1) or found.group(2)).replace(".", "").split())  # no-break spaces too
        for fmt in ("%B %d, %Y", "%b %d, %Y"):
            try:
                return datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
    iso = _ISO_DATE.search(subject.split("period", 1)[-1]) if "period" in subject.lower() else None
    return "-".join(iso.groups()) if iso else ""


def _period(stem: str) -> str:
    found = _QUARTER_YEAR.search(stem)
    if found:
        quarter, year = (
            (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
        )
        return f"{year} Q{quarter}"
    fiscal = _FISCAL_YEAR.search(stem)
    if fiscal:
        year = fiscal.group(1)
        return f"{year if len(year) == 4 else '20' + year} FY"
    return ""


def _ticker(stem: str) -> str:
    for token in _TICKER.findall(stem):
        if token not in _NOT_TICKERS and not re.fullmatch(r"Q[1-4]", token):
            return str(token)
    return ""


def _title(pdf_title: str, meta: Mapping[str, str], cover: str, stem: str) -> str:
    words = re.findall(r"[A-Za-z]{3,}", pdf_title)
    if words and pdf_title.strip() != stem:
        return " ".join(pdf_title.split())
    known = [meta[k] for k in ("company", "form", "period") if k in meta]
    if len(known) >= 2:
        return " ".join(known)
    first = next((line.strip() for line in cover.splitlines() if len(line.strip()) > 3), "")
    return first[:120] or stem


class MetadataFileError(ValueError):
    """A `metadata.jsonl` line cannot be read; the message names the file, the line and the fix."""


def read_overrides(paths: Iterable[Path]) -> list[dict[str, str]]:
    """The `metadata.jsonl` rows beside the inputs; a bad line is an error naming it and the fix."""
    rows: list[dict[str, str]] = []
    for path in _override_files(paths):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise MetadataFileError(
                    f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line"
                ) from e
            if not isinstance(row, dict) or not isinstance(row.get("file"), str):
                raise MetadataFileError(
                    f'{path}:{lineno}: a metadata line needs "file" (a file name or glob) and string fields'
                )
            rows.append({str(k): str(v) for k, v in row.items()})
    return rows


def _override_files(paths: Iterable[Path]) -> list[Path]:
    found: dict[Path, None] = {}
    for p in paths:
        folder = p if p.is_dir() else p.parent
        candidate = folder / METADATA_FILE
        if candidate.is_file():
            found[candidate.resolve()] = None
    return list(found)


def metadata_signature(rows: Iterable[Mapping[str, str]]) -> str:
    """The rules' version and a hash of the overrides: part of the index signature, so editing
    `metadata.jsonl` (or upgrading the rules) makes a new generation."""
    text = json.dumps([dict(r) for r in rows], sort_keys=True)
    return f"v{RULES_VERSION}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def document_metadata(doc: Document, rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The derived fields of an extracted document with the user's overrides applied."""
    first = doc.pages[0].text if doc.pages else ""
    return with_overrides(derive_metadata(doc.source, doc.title, first), doc.id, rows)


def with_overrides(meta: Mapping[str, str], doc_id: str, rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """`meta` with every matching override row's fields applied, in file order (later rows win)."""
    out = dict(meta)
    for row in rows:
        if doc_matches(row["file"], doc_id):
            out.update({k: v for k, v in row.items() if k != "file"})
    return out
