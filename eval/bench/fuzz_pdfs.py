"""Fuzz PDF extraction: thousands of mutated PDFs through the real worker pool, none may crash or hang.

Seeds are the test suite's generated PDFs (tests/fixtures/pdfgen.py) plus the small PDFs
under shared/data/pdfs (and any --corpus DIR). Each case is one seeded mutation
(tests/fixtures/pdf_mutations.py: byte flips, truncation, objects duplicated or removed,
a broken xref, huge declared sizes, nesting thousands deep, decompression bombs) and is
extracted by `extract_many` with the default config, a per-file time limit and the
workers' memory cap, in batches. Per case the outcome is:

- indexed: a document came back;
- typed error: an `ExtractionError` other than a worker crash (a timeout counts here:
  the time limit turned it into a typed error, as designed);
- crash: the worker died (`WorkerCrashError`) or an untyped exception escaped;
- hang: no result within the time limit plus a grace period.

After each batch no extraction process may be left running. `max_rss_mb` is the peak RSS of
the largest worker (getrusage of reaped children). Progress goes to stderr; the last line of
stdout is one JSON object. Target: 0 crashes, 0 hangs.

    .venv/bin/python eval/bench/fuzz_pdfs.py --cases 5000 [--seed 0] [--timeout 5] [--workers 2]
        [--corpus DIR ...] [--max-kb 64] [--memory-mb 4096] [--out runs/fuzz/fuzz_pdfs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the seeds and the mutator are test fixtures, as in serve_load.py

from ragsys.extract import ExtractionError, ExtractResult, PdfExtractorConfig, extract_many  # noqa: E402
from tests.fixtures import pdfgen  # noqa: E402
from tests.fixtures.paths import SHARED_DATA  # noqa: E402
from tests.fixtures.pdf_mutations import NAMES, Mutant, mutate  # noqa: E402

TYPED = {c.__name__ for c in [ExtractionError, *ExtractionError.__subclasses__()]} - {"WorkerCrashError"}
GRACE_S = 5.0  # a timeout's result may arrive this late (the parent polls, the CPU is shared)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generated_seeds(folder: Path) -> list[Path]:
    """The extraction tests' own PDFs: text, columns, a ruled table, headings, a scan, a password."""
    return [
        pdfgen.simple(folder / "simple.pdf", pages=3),
        pdfgen.two_columns(folder / "two_columns.pdf"),
        pdfgen.ruled_table(folder / "ruled_table.pdf"),
        pdfgen.headings(folder / "headings.pdf"),
        pdfgen.image_only(folder / "image_only.pdf", with_text_page=True),
        pdfgen.encrypted(folder / "encrypted.pdf"),
    ]


def corpus_seeds(folders: Sequence[Path], max_kb: int) -> list[Path]:
    found = sorted(p for d in folders for p in d.rglob("*") if p.suffix.lower() == ".pdf")
    return [p for p in found if p.stat().st_size <= max_kb * 1024]


def manifest_passwords(folders: Sequence[Path]) -> tuple[str, ...]:
    """Passwords of shared/data/pdfs's encrypted files, so their seeds decrypt (plus pdfgen's)."""
    found = {"s3cret"}
    for folder in folders:
        manifest = folder / "manifest.json"
        if manifest.exists():
            found |= {e["password"] for e in json.loads(manifest.read_text()) if e.get("password")}
    return tuple(sorted(found))


class Tally:
    """Outcome counts, overall and per mutation, plus a few examples of every bad outcome."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.by_mutation: dict[str, Counter[str]] = defaultdict(Counter)
        self.examples: dict[str, list[str]] = defaultdict(list)
        self.seconds: Counter[str] = Counter()

    def add(self, case: Mutant, index: int, result: ExtractResult | None) -> None:
        outcome = self._outcome(result)
        self.counts[outcome] += 1
        mutation = case.name.split("+")[0]
        self.by_mutation[mutation][outcome] += 1
        if result is not None:
            self.seconds[mutation] += result.seconds
        if result is not None and result.error_type is not None:
            self.errors[result.error_type] += 1
            if result.error_type == "ExtractionTimeout":
                self.by_mutation[mutation]["timeouts"] += 1  # also counted under typed_errors
        if outcome in ("crashes", "hangs") and len(self.examples[outcome]) < 20:
            detail = "no result" if result is None else f"{result.error_type}: {result.error}"
            self.examples[outcome].append(f"case {index} ({case.name}, seed {case.seed_index}): {detail}")
            log(f"{outcome[:-1].upper()} case {index} {case.name}: {detail}")

    def _outcome(self, result: ExtractResult | None) -> str:
        if result is None or result.seconds > self.limit_s + GRACE_S:
            return "hangs"
        if result.document is not None:
            return "indexed"
        return "typed_errors" if result.error_type in TYPED else "crashes"


def run_batch(
    cases: dict[Path, tuple[int, Mutant]], config: PdfExtractorConfig, workers: int, tally: Tally
) -> None:
    for path, (_, case) in cases.items():
        path.write_bytes(case.data)
    seen: set[str] = set()
    for result in extract_many(list(cases), config, workers=workers):
        seen.add(result.path)
        index, case = cases[Path(result.path)]
        tally.add(case, index, result)
    for path, (index, case) in cases.items():
        if str(path) not in seen:
            tally.add(case, index, None)
        path.unlink()


def leftover_processes() -> list[str]:
    """Live descendants, except multiprocessing's resource tracker: one helper per parent process,
    started with the first spawned worker, that exits with the parent."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "resource_tracker" not in cmdline:
            out.append(f"{child.pid} {cmdline[:200]}")
    return out


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    folders = [*args.corpus]
    seed_paths = generated_seeds(work) + corpus_seeds(folders, args.max_kb)
    seeds = [p.read_bytes() for p in seed_paths]
    log(f"{len(seeds)} seed PDFs ({sum(map(len, seeds)) // 1024} KB), {args.cases} cases, seed {args.seed}")
    config = PdfExtractorConfig(
        passwords=manifest_passwords(folders), timeout_s=args.timeout, max_memory_mb=args.memory_mb
    )
    tally, leftovers, start = Tally(args.timeout), [], time.perf_counter()
    for first in range(0, args.cases, args.batch):
        indices = range(first, min(first + args.batch, args.cases))
        cases = {work / f"case{i:06d}.pdf": (i, mutate(seeds, args.seed, i)) for i in indices}
        run_batch(cases, config, args.workers, tally)
        if left := leftover_processes():
            leftovers.extend(left)
            log(f"LEFT BEHIND after batch at case {first}: {left}")
        done, c = indices.stop, tally.counts
        log(
            f"{done}/{args.cases} indexed={c['indexed']} typed={c['typed_errors']} crashes={c['crashes']} "
            f"hangs={c['hangs']} timeouts={tally.errors['ExtractionTimeout']} "
            f"{time.perf_counter() - start:.0f} s"
        )
    return summary(args, tally, leftovers, seed_paths, time.perf_counter() - start)


def summary(
    args: argparse.Namespace, tally: Tally, leftovers: list[str], seeds: list[Path], wall: float
) -> dict[str, object]:
    c = tally.counts
    return {
        "cases": sum(c.values()),
        "indexed": c["indexed"],
        "typed_errors": c["typed_errors"],
        "crashes": c["crashes"],
        "hangs": c["hangs"],
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "leftover_processes": len(leftovers),
        "error_types": dict(sorted(tally.errors.items())),
        "by_mutation": {n: dict(sorted(tally.by_mutation[n].items())) for n in NAMES},
        "seconds_by_mutation": {n: round(tally.seconds[n], 1) for n in NAMES},
        "examples": dict(tally.examples),
        "seeds": len(seeds),
        "seed": args.seed,
        "timeout_s": args.timeout,
        "memory_mb": args.memory_mb,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, action="append", default=None, help="more seed PDFs")
    parser.add_argument("--max-kb", type=int, default=64, help="skip corpus PDFs larger than this")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-file time limit, seconds")
    parser.add_argument("--memory-mb", type=int, default=PdfExtractorConfig().max_memory_mb)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=250, help="cases written to disk at a time")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.corpus is None:
        args.corpus = [SHARED_DATA / "pdfs"] if (SHARED_DATA / "pdfs").is_dir() else []
    with tempfile.TemporaryDirectory(prefix="ragsys-fuzz-") as tmp:
        out = run(args, Path(tmp))
    line = json.dumps(out)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
