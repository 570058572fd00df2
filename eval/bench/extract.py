"""Extraction speed on the SEC 10-Q filings: ragsys against raw PyMuPDF, unstructured and pypdf.

All numbers come from one run on one machine, so ratios compare like with like (raw PyMuPDF
also runs with the single-threaded layout model that ragsys sets up, see ragsys/extract/runtime.py):
  - ragsys (tables on, prefilter off) vs raw PyMuPDF get_text() + find_tables() on every page
    (same options; target: ragsys time <= 1.3x raw)
  - ragsys tables off vs raw get_text()
  - ragsys with the table prefilter on vs off, with the table count of each (must be equal)
  - ragsys extract_many(workers=2) vs one process, default config (target: >= 1.8x the rate)
  - ragsys tables off vs unstructured strategy="fast" (target: >= 10x faster), unstructured
    timed on the first files up to --unstructured-pages pages, normalized to pages/s
  - pypdf extract_text()
If spaCy's en_core_web_sm model (which unstructured downloads at run time) is not installed,
unstructured is timed with spaCy's blank English pipeline plus a sentencizer: lighter than
the real model, so unstructured's rate is then an upper bound and the ratio a lower bound.

    .venv/bin/python eval/bench/extract.py [--docs DIR] [--limit N] [--unstructured-pages 100] [--only-pool]

`--only-pool` runs just the two-worker pool against one process (default config), for a
re-measurement on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf
from rich.console import Console
from rich.progress import Progress

from ragsys.extract import PdfExtractorConfig, extract_many
from ragsys.extract.runtime import use_lean_layout_model
from ragsys.types import Document

DEFAULT_DOCS = Path(__file__).resolve().parents[3] / "shared" / "data" / "sec10q" / "docs"
console = Console(stderr=True)
PYPDF_FAILURES: list[str] = []


def timed(name: str, files: list[Path], work: Callable[[Path], int]) -> dict[str, float]:
    """Run `work` (returns the number of tables it found) over files; pages/s from page counts."""
    pages = tables = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(name, total=len(files))
        start, cpu = time.perf_counter(), time.process_time()
        for path in files:
            tables += work(path)
            pages += page_count(path)
            progress.advance(task)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return report(name, seconds, pages, tables, cpu)


def report(label: str, seconds: float, pages: int, tables: int, cpu: float) -> dict[str, float]:
    """The rate of one timed run, printed to stderr as it finishes.

    `cores_used` is CPU time over wall time: below 1 (or below `workers` for the
    pool), other processes on the machine took the difference.
    """
    result = {
        "seconds": round(seconds, 2),
        "pages": pages,
        "pages_per_s": round(pages / seconds, 2),
        "tables": tables,
        "cores_used": round(cpu / seconds, 2),
    }
    console.print(f"{label}: {result}")
    return result


def page_count(path: Path) -> int:
    with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
        return int(doc.page_count)


def raw_text(path: Path) -> int:
    with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
        for page in doc:
            page.get_text()
    return 0


def raw_text_and_tables(path: Path) -> int:
    found = 0
    with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
        for page in doc:
            page.get_text()
            finder = page.find_tables()
            found += len(finder.tables) if finder else 0
    return found


def count_tables(doc: Document) -> int:
    return sum(b.kind == "table" for p in doc.pages for b in p.blocks)


def ragsys(config: PdfExtractorConfig) -> Callable[[Path], int]:
    extractor = config.build()
    return lambda path: count_tables(extractor.extract(path))


def pool(files: list[Path], config: PdfExtractorConfig, workers: int) -> dict[str, float]:
    pages = sum(page_count(p) for p in files)
    tables = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"ragsys pool x{workers}", total=len(files))
        start, cpu = time.perf_counter(), _children_cpu()
        for result in extract_many(
            files, config, workers=workers, on_result=lambda r: progress.advance(task)
        ):
            tables += count_tables(result.document) if result.document else 0
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    return report(f"pool x{workers}", seconds, pages, tables, cpu)


def _children_cpu() -> float:
    """CPU time of exited child processes (the pool's workers, once it has stopped them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def subset(files: list[Path], max_pages: int) -> list[Path]:
    chosen: list[Path] = []
    pages = 0
    for path in files:
        if chosen and pages + page_count(path) > max_pages:
            break
        chosen.append(path)
        pages += page_count(path)
    return chosen


def unstructured_fast() -> tuple[Callable[[Path], int], str]:
    """partition(strategy="fast"), and which spaCy pipeline it runs with."""
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import spacy
    from unstructured.nlp import tokenize
    from unstructured.partition.auto import partition

    try:
        spacy.load("en_core_web_sm")
        pipeline = "en_core_web_sm"
    except OSError:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        tokenize._get_nlp = lambda: nlp  # no download here; see the module docstring
        pipeline = "blank en + sentencizer (en_core_web_sm unavailable offline)"

    def work(path: Path) -> int:
        return sum(e.category == "Table" for e in partition(filename=str(path), strategy="fast"))

    return work, pipeline


def pypdf_text(path: Path) -> int:
    """pypdf's text; a file it rejects counts its pages at the time spent (noted in the output)."""
    from pypdf import PdfReader

    try:
        for page in PdfReader(path).pages:
            page.extract_text()
    except Exception as exc:  # pypdf raises LimitReachedError on one filing
        PYPDF_FAILURES.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files (0: all)")
    parser.add_argument("--unstructured-pages", type=int, default=100)
    parser.add_argument("--only-pool", action="store_true", help="only the pool x2 vs one process")
    args = parser.parse_args()
    files = sorted(args.docs.glob("*.pdf"))[: args.limit or None]
    if not files:
        sys.exit(f"no PDFs in {args.docs}")
    off, on = PdfExtractorConfig(table_prefilter=False), PdfExtractorConfig(table_prefilter=True)
    load_start = round(os.getloadavg()[0], 2)
    r: dict[str, object] = {"files": len(files), "cpus": os.cpu_count(), "pymupdf": pymupdf.__version__}
    r["lean_layout_model"] = use_lean_layout_model()  # raw PyMuPDF runs with the same model settings
    if args.only_pool:
        r["ragsys_pool_1"] = pool(files, on, workers=1)
        r["ragsys_pool_2"] = pool(files, on, workers=2)
        r["pool2_over_single_rate"] = round(
            float(r["ragsys_pool_2"]["pages_per_s"]) / float(r["ragsys_pool_1"]["pages_per_s"]),
            3,  # type: ignore[index]
        )
        r["load_average_start_end"] = [load_start, round(os.getloadavg()[0], 2)]
        print(json.dumps(r))
        return
    r["raw_get_text"] = timed("raw get_text", files, raw_text)
    r["ragsys_tables_off"] = timed("ragsys tables off", files, ragsys(PdfExtractorConfig(tables=False)))
    r["raw_get_text_find_tables"] = timed("raw get_text+find_tables", files, raw_text_and_tables)
    r["ragsys_prefilter_off"] = timed("ragsys tables, prefilter off", files, ragsys(off))
    r["ragsys_prefilter_on"] = timed("ragsys tables, prefilter on", files, ragsys(on))
    r["ragsys_pool_2"] = pool(files, on, workers=2)
    work, pipeline = unstructured_fast()
    r["unstructured_fast"] = {
        **timed("unstructured fast", subset(files, args.unstructured_pages), work),
        "spacy": pipeline,
    }
    r["pypdf"] = {**timed("pypdf", files, pypdf_text), "failures": PYPDF_FAILURES}
    r["load_average_start_end"] = [
        load_start,
        round(os.getloadavg()[0], 2),
    ]  # other processes share the cores
    r["ratios"] = ratios(r)
    print(json.dumps(r))


def ratios(r: dict[str, object]) -> dict[str, object]:
    def rate(key: str) -> float:
        return float(r[key]["pages_per_s"])  # type: ignore[index]

    def secs(key: str) -> float:
        return float(r[key]["seconds"])  # type: ignore[index]

    tables_same = r["ragsys_prefilter_on"]["tables"] == r["ragsys_prefilter_off"]["tables"]  # type: ignore[index]
    out = {
        "ragsys_tables_time_over_raw": round(
            secs("ragsys_prefilter_off") / secs("raw_get_text_find_tables"), 3
        ),
        "ragsys_tables_off_time_over_raw_get_text": round(
            secs("ragsys_tables_off") / secs("raw_get_text"), 3
        ),
        "prefilter_speedup": round(secs("ragsys_prefilter_off") / secs("ragsys_prefilter_on"), 3),
        "prefilter_table_counts_equal": tables_same,
        "pool2_over_single_rate": round(rate("ragsys_pool_2") / rate("ragsys_prefilter_on"), 3),
        "tables_off_over_unstructured_rate": round(rate("ragsys_tables_off") / rate("unstructured_fast"), 1),
        "ragsys_tables_off_over_pypdf_rate": round(rate("ragsys_tables_off") / rate("pypdf"), 2),
    }
    out["targets"] = {
        "ragsys_tables_le_1.3x_raw": out["ragsys_tables_time_over_raw"] <= 1.3,
        "pool2_ge_1.8x": out["pool2_over_single_rate"] >= 1.8,
        "tables_off_ge_10x_unstructured": out["tables_off_over_unstructured_rate"] >= 10,
        "prefilter_lossless": tables_same,
    }
    return out


if __name__ == "__main__":
    main()
