"""A fixed sample of mutated PDFs through the worker pool: text or a typed error, in time, in bounded
memory, and no worker left behind. eval/bench/fuzz_pdfs.py runs thousands of the same cases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import psutil
import pytest

from ragsys.extract import ExtractionError, PdfExtractorConfig, extract_many
from ragsys.types import Document
from tests.fixtures import pdfgen
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.pdf_mutations import NAMES, bomb, deflate_bomb, mutate

TYPED = {c.__name__ for c in ExtractionError.__subclasses__()} - {"WorkerCrashError"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    made = [pdfgen.simple(folder / "s.pdf", pages=2), pdfgen.ruled_table(folder / "t.pdf")]
    return [p.read_bytes() for p in made]


def _live_children() -> list[str]:
    """Extraction processes still running (multiprocessing's resource tracker lives on by design)."""
    alive = [c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    return [" ".join(c.cmdline()) for c in alive if "resource_tracker" not in " ".join(c.cmdline())]


def test_mutate_is_deterministic_per_seed_and_case(seeds: list[bytes]) -> None:
    first = [mutate(seeds, 7, i) for i in range(len(NAMES))]
    assert first == [mutate(seeds, 7, i) for i in range(len(NAMES))]
    assert {m.name.split("+")[0] for m in first} == set(NAMES)
    assert all(m.data != seeds[m.seed_index] for m in first)
    assert [m.data for m in first] != [mutate(seeds, 8, i).data for i in range(len(NAMES))]


def test_deflate_bomb_inflates_to_its_size_with_a_valid_checksum() -> None:
    data = deflate_bomb(5)
    assert len(data) < 10_000
    assert zlib.decompress(data) == b" " * (5 << 20)  # zlib checks the Adler-32 trailer


def test_fuzz_sample_gives_text_or_typed_errors_in_bounded_memory(tmp_path: Path, seeds: list[bytes]) -> None:
    paths = []
    for i in range(len(NAMES)):
        case = mutate(seeds, 0, i)
        paths.append(tmp_path / f"case{i:02d}-{case.name}.pdf")
        paths[-1].write_bytes(case.data)
    plain = pdfgen.simple(tmp_path / "plain.pdf")  # smallest, so handed out last: the pool kept going
    font = tmp_path / "font-bomb.pdf"  # a 2 GB font program on its only page: over the 1 GB cap below
    font.write_bytes(bomb(plain.read_bytes(), "font", 2048))
    one_page = tmp_path / "one-bad-page.pdf"  # the same on one of two pages: the other page survives
    one_page.write_bytes(bomb(seeds[0], "font", 2048))
    config = PdfExtractorConfig(ocr="off", timeout_s=10.0, max_memory_mb=1024)
    everything = [*paths, font, one_page, plain]
    results = {r.path: r for r in extract_many(everything, config, workers=2)}
    assert sorted(results) == sorted(str(p) for p in everything)
    failed = {p: r for p, r in results.items() if r.document is None}
    assert not {p: f"{r.error_type}: {r.error}" for p, r in failed.items() if r.error_type not in TYPED}
    assert all(r.seconds < 10.0 + 3 for r in results.values())
    assert results[str(font)].error_type == "MemoryLimitError"
    assert "needs more than 1024 MB" in (results[str(font)].error or "")
    survivor = results[str(one_page)].document
    assert survivor is not None and "Hello" in "".join(page.text for page in survivor.pages)
    assert any("ran out of memory (max_memory_mb=1024), skipped" in w for w in survivor.warnings)
    assert results[str(plain)].document is not None
    assert not _live_children()


class _Greedy:
    """Allocates 3 GB for files named greedy*, kills its own process for die*: stand-ins for a
    decompression bomb in Python code and a segfault in C."""

    def __init__(self) -> None:
        self._real = PdfExtractorConfig(ocr="off").build()

    def extract(self, path: Path) -> Document:
        if path.name.startswith("greedy"):
            bytearray(3 << 30)
        if path.name.startswith("die"):
            os.kill(os.getpid(), signal.SIGKILL)
        return self._real.extract(path)


def build_greedy(config: PdfExtractorConfig) -> _Greedy:
    """Module-level, so spawned workers can unpickle it."""
    return _Greedy()


def test_a_worker_over_its_memory_cap_or_killed_is_replaced_and_the_pool_goes_on(tmp_path: Path) -> None:
    names = ["greedy.txt", "die.txt", "after-1.txt", "after-2.txt", "after-3.txt"]
    for name in names:
        (tmp_path / name).write_text(f"text of {name}")
    config = PdfExtractorConfig(max_memory_mb=1024)
    results = {
        Path(r.path).name: r for r in extract_many([tmp_path / n for n in names], config, build=build_greedy)
    }
    assert results["greedy.txt"].error_type == "MemoryLimitError"
    assert "greedy.txt" in (results["greedy.txt"].error or "")
    assert results["die.txt"].error_type == "WorkerCrashError"
    for name in names[2:]:
        document = results[name].document
        assert document is not None and document.pages[0].text == f"text of {name}"
    assert not _live_children()


_PARENT = """
import sys
from pathlib import Path
from ragsys.extract import PdfExtractorConfig, extract_many
from tests.extract.test_fuzz import build_sleepy
paths = [Path(p) for p in sys.argv[1:]]
list(extract_many(paths, PdfExtractorConfig(), workers=2, build=build_sleepy))
"""


class _Sleepy:
    """Says it started a file (a marker beside it), then sleeps for a minute."""

    def extract(self, path: Path) -> Document:
        path.with_suffix(".started").touch()
        time.sleep(60)
        raise AssertionError("not killed")


def build_sleepy(config: PdfExtractorConfig) -> _Sleepy:
    return _Sleepy()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A parent killed mid-run must not leave workers stuck in a file (each sleeps 60 s here)."""
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for p in paths:
        p.write_text("slow")
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, *map(str, paths)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not all(p.with_suffix(".started").exists() for p in paths) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [c for c in psutil.Process(parent.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2  # both hold a file now
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(w.pid) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(w.pid) for w in workers)


class _BrokenTreePage:
    """A page that loaded, but whose number the broken page tree cannot look up (fuzz case 2226)."""

    def get_images(self) -> list[object]:
        raise ValueError("bad page number(s)")

    def get_drawings(self) -> list[object]:
        return [{"items": []}]


def test_a_page_the_page_tree_cannot_find_still_counts_its_drawings() -> None:
    from ragsys.extract.pdf import _has_graphics

    assert _has_graphics(_BrokenTreePage())  # type: ignore[arg-type]
