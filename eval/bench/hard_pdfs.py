"""Every hard PDF yields text or a typed error: no crash, no hang.

Runs ragsys extraction (default config, the manifest's passwords, a per-file time
limit) over the 75 files in shared/data/pdfs via `extract_many`, then prints a
table per category (indexed / failed / reasons) and one JSON summary line.

    .venv/bin/python eval/bench/hard_pdfs.py [--data DIR] [--workers 2] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ragsys.extract import ExtractResult, PdfExtractorConfig, extract_many

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pdfs"
TYPED = {
    "EncryptedError",
    "MalformedError",
    "EmptyDocumentError",
    "UnsupportedFormatError",
    "ExtractionTimeout",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    manifest = args.data / "manifest.json"
    if not manifest.exists():
        sys.exit(f"no manifest at {manifest}: shared/data/pdfs is missing")
    # The manifest also lists reference outputs (.csv, .json, .txt) kept beside some PDFs.
    entries = [e for e in json.loads(manifest.read_text()) if e["file"].lower().endswith(".pdf")]
    category = {str(args.data / e["file"]): e["category"] for e in entries}
    passwords = tuple(sorted({e["password"] for e in entries if e.get("password")}))
    config = PdfExtractorConfig(passwords=passwords, timeout_s=args.timeout)
    console = Console(stderr=True)
    start = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("extracting", total=len(category))
        results = list(
            extract_many(
                [Path(p) for p in category],
                config,
                workers=args.workers,
                on_result=lambda r: progress.advance(task),
            )
        )
    wall = time.perf_counter() - start
    summary = summarize(results, category)
    show(summary, console)
    print_failures(results)
    untyped = [r.path for r in results if r.error_type is not None and r.error_type not in TYPED]
    out = {
        "files": len(results),
        "indexed": sum(r.document is not None for r in results),
        "failed": sum(r.document is None for r in results),
        "untyped_errors": untyped,
        "wall_s": round(wall, 2),
        "workers": args.workers,
        "timeout_s": args.timeout,
        "cpus": os.cpu_count(),
        "categories": summary,
    }
    print(json.dumps(out))


def summarize(results: list[ExtractResult], category: dict[str, str]) -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = defaultdict(
        lambda: {"indexed": 0, "failed": 0, "reasons": Counter()}
    )
    for r in results:
        row = table[category[r.path]]
        if r.document is not None:
            row["indexed"] = int(str(row["indexed"])) + 1
            warned = [w for w in r.document.warnings if "no text layer" in w or "repaired" in w]
            for w in warned:
                row["reasons"][_short(w)] += 1  # type: ignore[index]
        else:
            row["failed"] = int(str(row["failed"])) + 1
            row["reasons"][r.error_type or "?"] += 1  # type: ignore[index]
    return {k: {**v, "reasons": dict(v["reasons"])} for k, v in sorted(table.items())}  # type: ignore[call-overload]


def _short(warning: str) -> str:
    return "warn: repaired" if "repaired" in warning else "warn: page(s) without text layer"


def show(summary: dict[str, dict[str, object]], console: Console) -> None:
    table = Table(title="hard PDFs by category")
    for column in ("category", "indexed", "failed", "reasons"):
        table.add_column(column)
    for name, row in summary.items():
        reasons = ", ".join(f"{k} x{v}" for k, v in row["reasons"].items())  # type: ignore[attr-defined]
        table.add_row(name, str(row["indexed"]), str(row["failed"]), reasons)
    console.print(table)


def print_failures(results: list[ExtractResult]) -> None:
    for r in sorted(results, key=lambda r: r.path):
        if r.document is None:
            print(f"FAILED {r.error_type}: {r.error}", file=sys.stderr)


if __name__ == "__main__":
    main()
