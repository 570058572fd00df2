"""`index_paths` on a local Ray cluster (loopback, 2 CPUs, started here): the same index as a
local run, incremental, resumable after `kill -9`, and failures reported as locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragsys.distributed import ClusterError, RayExecutor, RayOptions, parse_address
from ragsys.distributed.extract import _job
from ragsys.extract import ExtractionTimeout, PdfExtractorConfig
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.index.spec import IndexSpec
from ragsys.pipeline import PipelineConfig
from ragsys.types import Document
from tests.fixtures import pdfgen
from tests.fixtures.corpus import write_corpus

ray = pytest.importorskip("ray")
QUERIES = ["picking arm twelve kilograms", "harmonic drives grease", "revenue rose percent",
           "annual report", "left column paragraph", "solar panels on the roof"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local Ray instance for the module: its GCS address, for drivers in other processes."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def make_corpus(root: Path) -> Path:
    """Text, markdown, generated PDFs, a BEIR corpus.jsonl, and two files that fail to extract."""
    write_corpus(root)
    pdfgen.simple(
        root / "simple.pdf", "Solar panels on the roof cover a third of the plant's power.", pages=2
    )
    pdfgen.headings(root / "report.pdf")
    pdfgen.two_columns(root / "columns.pdf")
    pdfgen.ruled_table(root / "table.pdf")
    rows = [{"_id": f"c{i}", "title": f"Row {i}", "text": f"Corpus row {i} mentions grease and arms {i}."}
            for i in range(5)]  # fmt: skip
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "fake.pdf").write_bytes(b"this is not a pdf at all")
    (root / "empty.txt").write_text("   \n", encoding="utf-8")
    return root


def ray_index(paths: list[Path], idx: Path, spec: IndexSpec, **options: object) -> tuple[RayExecutor, object]:
    with RayExecutor(RayOptions(**options)) as ex:  # type: ignore[arg-type]
        return ex, index_paths(paths, idx, spec, executor=ex)


def assert_same_index(a: Path, b: Path, pipeline: PipelineConfig) -> None:
    """Same chunks in the same rows, equal BM25 scores, the same nearest neighbours."""
    ia, ib = Index.open(a), Index.open(b)
    try:
        assert list(ia.store.iter_chunks()) == list(ib.store.iter_chunks())
        assert ia.manifest.documents == ib.manifest.documents
        bm25, dense = pipeline.retrievers
        for q in QUERIES:
            ha, hb = bm25.build(ia).retrieve(q, 5), bm25.build(ib).retrieve(q, 5)  # type: ignore[union-attr]
            assert [(h.chunk.id, h.score) for h in ha] == [(h.chunk.id, h.score) for h in hb]
            da, db = dense.build(ia).retrieve(q, 5), dense.build(ib).retrieve(q, 5)  # type: ignore[union-attr]
            assert [h.chunk.id for h in da] == [h.chunk.id for h in db]
            assert np.allclose([h.score for h in da], [h.score for h in db], atol=1e-5)
    finally:
        ia.close()
        ib.close()


def test_ray_builds_the_local_index_and_reports_the_same_failures(
    cluster: str, tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    corpus = make_corpus(tmp_path / "docs")
    spec = tiny_pipeline.index_spec()
    local = index_paths([corpus], tmp_path / "local", spec, workers=1)
    ex, remote = ray_index([corpus], tmp_path / "ray", spec)
    # the same typed errors, naming the user's file (not a worker's copy); only the order differs
    assert sorted(remote.files_failed, key=str) == sorted(local.files_failed, key=str)  # type: ignore[attr-defined]
    assert {Path(f.path).name for f in local.files_failed} == {"fake.pdf", "empty.txt"}
    assert remote.chunks == local.chunks > 0 and remote.chunks_embedded == local.chunks  # type: ignore[attr-defined]
    assert sorted(Path(p).name for p in ex.sent) == [
        "columns.pdf",
        "empty.txt",
        "fake.pdf",
        "fruit.md",
        "notes.txt",
        "report.pdf",
        "robots.md",
        "simple.pdf",
        "table.pdf",
    ]  # fmt: skip  -- corpus.jsonl rows are read by the driver; their chunking ran on the cluster
    assert ex.chunks == {}, "every chunk made on the cluster was written"
    assert_same_index(tmp_path / "local", tmp_path / "ray", tiny_pipeline)


class Recorder:
    """A `Reporter` that keeps each bar's total and what was done of it."""

    def __init__(self) -> None:
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def stage(self, name: str, total: int) -> None:
        self.total[name], self.done[name] = total, 0

    def advance(self, name: str, n: int = 1) -> None:
        self.done[name] += n

    def log(self, message: str) -> None:
        pass


def test_incremental_run_sends_only_new_and_changed_files(
    cluster: str, tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    corpus = write_corpus(tmp_path / "docs")
    pdfgen.simple(corpus / "simple.pdf")
    spec, idx = tiny_pipeline.index_spec(), tmp_path / "idx"
    bars = Recorder()
    with RayExecutor() as ex:
        first = index_paths([corpus], idx, spec, executor=ex, reporter=bars)
    embed = f"embed {tiny_pipeline.retrievers[1].model}"  # type: ignore[union-attr]
    # one bar over files and one over chunks embedded, both full, fed as workers answer
    assert (bars.total["extract"], bars.done["extract"]) == (4, 4)
    assert bars.total[embed] == bars.done[embed] == first.chunks_embedded == first.chunks > 0
    ex, same = ray_index([corpus], idx, spec)
    assert ex.sent == [] and same.files_skipped_unchanged == 4  # type: ignore[attr-defined]
    (corpus / "notes.txt").write_text("Revenue fell by a third after the floods.\n", encoding="utf-8")
    (corpus / "new.md").write_text(
        "# New\n\nA warehouse opened in Reno with a second shift.\n", encoding="utf-8"
    )
    ex, changed = ray_index([corpus], idx, spec)
    assert sorted(Path(p).name for p in ex.sent) == ["new.md", "notes.txt"]
    assert changed.files_new_or_changed == 2 and changed.files_skipped_unchanged == 3  # type: ignore[attr-defined]
    index_paths([corpus], tmp_path / "local", spec, workers=1)
    assert_same_index(tmp_path / "local", idx, tiny_pipeline)


class FlakyExtractor:
    """Kills its worker process the first time it sees a file named die*; sleeps on slow*."""

    def __init__(self, config: PdfExtractorConfig) -> None:
        self._real = config.build()

    def extract(self, path: Path) -> Document:
        marker = path.with_suffix(".died")
        if path.name.startswith("die") and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # as a segfault or the OOM killer would: no exception, no clean-up
        if path.name.startswith("slow"):
            time.sleep(60)
        return self._real.extract(path)


def build_flaky(config: PdfExtractorConfig) -> FlakyExtractor:
    return FlakyExtractor(config)


def test_a_dead_worker_is_retried_and_an_overdue_file_times_out(
    cluster: str, tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    # Shared path: the workers read the files where they are, so the marker lands beside them.
    corpus = write_corpus(tmp_path / "docs", {"die.txt": "Died once, then extracted.", "slow.txt": "never",
                                              "ok.txt": "An ordinary file."})  # fmt: skip
    spec = tiny_pipeline.index_spec()
    spec = spec.model_copy(update={"extractor": PdfExtractorConfig(timeout_s=2)})
    options = RayOptions(shared_path=corpus)
    with RayExecutor(options, build=build_flaky) as ex:
        s = index_paths([corpus], tmp_path / "idx", spec, executor=ex)
    assert (corpus / "die.died").exists(), "the first attempt killed its worker"
    slow = str((corpus / "slow.txt").resolve())
    as_locally = str(ExtractionTimeout(slow, "extraction took longer than 2 s"))
    assert [(f.path, f.error) for f in s.files_failed] == [(slow, as_locally)]
    assert s.files_indexed == 2


def test_files_are_shipped_unless_under_the_shared_path(tmp_path: Path) -> None:
    inside = write_corpus(tmp_path / "shared", {"a.txt": "alpha"}) / "a.txt"
    outside = write_corpus(tmp_path / "local", {"b.txt": "beta"}) / "b.txt"
    assert _job(inside, tmp_path / "shared").data is None
    assert _job(outside, tmp_path / "shared").data == b"beta"
    assert _job(inside, None).data == b"alpha"


def test_addresses_are_checked() -> None:
    assert [parse_address(a) for a in ("local", "auto", "ray://head:10001", "10.0.0.5:6379")] == [
        "local", "auto", "ray://head:10001", "10.0.0.5:6379",
    ]  # fmt: skip
    with pytest.raises(ClusterError, match="not a Ray address"):
        parse_address("docs/")


CRASH_SCRIPT = """
import sys
from pathlib import Path
from ragsys.distributed import RayExecutor, RayOptions
from ragsys.index.build import index_paths
from ragsys.pipeline import PipelineConfig
config = PipelineConfig.model_validate_json(Path(sys.argv[3]).read_text())
with RayExecutor(RayOptions(address=sys.argv[4])) as ex:
    index_paths([Path(sys.argv[1])], Path(sys.argv[2]), config.index_spec(), executor=ex)
"""


@pytest.mark.parametrize("stage", [pytest.param("extract", marks=pytest.mark.slow), "embed"])
def test_killed_driver_leaves_the_index_usable_and_the_rerun_resumes(
    cluster: str, tmp_path: Path, tiny_pipeline: PipelineConfig, stage: str
) -> None:
    corpus = write_corpus(tmp_path / "docs")
    spec, idx = tiny_pipeline.index_spec(), tmp_path / "idx"
    _, first = ray_index([corpus], idx, spec)
    (corpus / "more.txt").write_text("Another document about grease and gripper pads.\n", encoding="utf-8")
    pdfgen.simple(corpus / "extra.pdf", "Gripper pads wear out after nine months.")
    cfg = tmp_path / "pipeline.json"
    cfg.write_text(tiny_pipeline.model_dump_json())
    env = dict(os.environ, RAGSYS_FAULT_AT=stage)
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(corpus), str(idx), str(cfg), cluster],
                          env=env, capture_output=True, timeout=240)  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()[-3000:]
    index = Index.open(idx)  # the previous generation, complete
    assert index.manifest.generation == first.generation  # type: ignore[attr-defined]
    assert len(list(index.store.iter_chunks())) == first.chunks  # type: ignore[attr-defined]
    index.close()
    ex, resumed = ray_index([corpus], idx, spec)
    assert ex.sent == [], "extraction was cached before the kill: nothing is sent again"
    if stage == "embed":
        assert resumed.chunks_embedded == 0  # type: ignore[attr-defined]
    index_paths([corpus], tmp_path / "local", spec, workers=1)
    assert_same_index(tmp_path / "local", idx, tiny_pipeline)  # no chunk lost or duplicated


def test_cli_index_on_a_ray_cluster(cluster: str, tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    from typer.testing import CliRunner

    from ragsys.cli.app import app

    corpus = write_corpus(tmp_path / "docs")
    tiny_pipeline.save(tmp_path / "pipeline")
    args = ["index", str(corpus), "--index", str(tmp_path / "idx"), "--pipeline", str(tmp_path / "pipeline")]
    runner = CliRunner()
    r = runner.invoke(app, [*args, "--ray-address", cluster, "--ray-shared-path", str(corpus), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["files_indexed"] == 3
    r = runner.invoke(app, [*args, "--ray-shared-path", str(corpus)])
    assert r.exit_code == 2 and "--ray-shared-path applies to Ray runs" in r.output
    r = runner.invoke(app, [*args, "--ray-address", "docs/"])
    assert r.exit_code == 2 and "not a Ray address" in r.output
