"""`index_paths` on a tiny corpus: incremental runs, failures kept apart, and a kill at any stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragsys.encoders.backend import resolve_backend
from ragsys.index.build import index_paths
from ragsys.index.manifest import read_manifest
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus


def test_first_run_indexes_every_file(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    s = index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert s.files_indexed == 3 and s.files_skipped_unchanged == 0 and not s.files_failed
    index = Index.open(tmp_path / "idx")
    chunks = list(index.store.iter_chunks())
    assert len(chunks) == s.chunks > 0
    assert {c.doc_id for c in chunks} == {
        str((corpus / n).resolve()) for n in ("robots.md", "fruit.md", "notes.txt")
    }
    # every chunk has one embedding and one BM25 row
    assert len(index.vectors(tiny_pipeline.retrievers[1])) == len(chunks)  # type: ignore[arg-type]
    assert index.bm25(tiny_pipeline.retrievers[0].tokenizer).num_docs == len(chunks)  # type: ignore[arg-type]
    # the runtime that embedded the passages is recorded (and reported by `index --json` and `inspect`)
    ran = resolve_backend(tiny_pipeline.retrievers[1].backend)  # type: ignore[union-attr]
    assert [r.backend for r in index.manifest.dense] == [ran]
    assert s.embed_backends == {tiny_pipeline.retrievers[1].model: ran}  # type: ignore[union-attr]


def test_a_changed_encoder_backend_is_a_new_vector_set(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    """int8 or bf16 vectors are never mixed with fp32 ones: the backend is part of the vector key."""
    corpus = write_corpus(tmp_path / "docs")
    index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    dense = tiny_pipeline.retrievers[1].model_copy(update={"backend": "torch"})
    fp32 = tiny_pipeline.model_copy(update={"retrievers": (tiny_pipeline.retrievers[0], dense)})
    s = index_paths([corpus], tmp_path / "idx", fp32.index_spec(), workers=1)
    assert s.chunks_embedded == s.chunks and s.embed_backends == {dense.model: "torch"}


def test_unchanged_rerun_writes_nothing(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    first = index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    second = index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert second.generation == first.generation
    assert second.files_skipped_unchanged == 3 and second.chunks == first.chunks
    assert second.files_indexed == 3


def test_add_change_delete(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
    (corpus / "fruit.md").unlink()
    (corpus / "notes.txt").write_text("Revenue fell by a third after the floods.\n", encoding="utf-8")
    (corpus / "new.txt").write_text("A new warehouse opened in Reno with a second shift.\n", encoding="utf-8")
    s = index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
    assert (s.files_skipped_unchanged, s.files_new_or_changed, s.files_deleted) == (1, 2, 1)
    index = Index.open(idx)
    chunks = list(index.store.iter_chunks())
    docs = {Path(c.doc_id).name for c in chunks}
    assert docs == {"robots.md", "notes.txt", "new.txt"}
    assert not any("Strawberries" in c.text for c in chunks)
    assert any("a third" in c.text for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks), "no chunk is duplicated"


def test_documents_from_other_roots_survive(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    a = write_corpus(tmp_path / "a", {"one.txt": "alpha beta gamma"})
    b = write_corpus(tmp_path / "b", {"two.txt": "delta epsilon"})
    index_paths([a], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    s = index_paths([b], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert s.documents == 2 and s.files_deleted == 0


def test_bad_files_are_reported_and_good_ones_indexed(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs", {"good.txt": "harmonic drives and picking arms"})
    (corpus / "empty.pdf").write_bytes(b"")
    (corpus / "fake.pdf").write_bytes(b"this is not a pdf at all")
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n")
    s = index_paths([corpus, tmp_path / "missing"], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert s.files_indexed == 1
    failed = {Path(f.path).name: f.error for f in s.files_failed}
    assert set(failed) == {"empty.pdf", "fake.pdf", "image.png", "missing"}
    assert all(failed.values())


def test_a_file_that_breaks_keeps_its_previous_version(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "alpha text", "b.pdf": ""})
    (corpus / "b.pdf").unlink()
    index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    before = read_manifest(tmp_path / "idx").documents
    (corpus / "a.txt").write_bytes(b"")  # now empty: extraction fails
    s = index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert [Path(f.path).name for f in s.files_failed] == ["a.txt"]
    assert read_manifest(tmp_path / "idx").documents == before


CRASH_SCRIPT = """
import sys
from pathlib import Path
from ragsys.encoders.backend import resolve_backend
from ragsys.index.build import index_paths
from ragsys.pipeline import PipelineConfig
config = PipelineConfig.model_validate_json(Path(sys.argv[3]).read_text())
index_paths([Path(sys.argv[1])], Path(sys.argv[2]), config.index_spec(), workers=1)
"""


@pytest.mark.parametrize("stage", ["extract", "chunk", "embed", "write", "switch"])
def test_kill_mid_write_leaves_previous_generation_usable(
    tmp_path: Path, tiny_pipeline: PipelineConfig, stage: str
) -> None:
    corpus = write_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    first = index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
    (corpus / "more.txt").write_text("Another document about grease and gripper pads.\n", encoding="utf-8")
    cfg = tmp_path / "pipeline.json"
    cfg.write_text(tiny_pipeline.model_dump_json())
    env = dict(os.environ, RAGSYS_FAULT_AT=stage)
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(corpus), str(idx), str(cfg)], env=env,
                          capture_output=True, timeout=300)  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    index = Index.open(idx)  # the previous generation, complete
    assert index.manifest.generation == first.generation
    assert len(list(index.store.iter_chunks())) == first.chunks
    index.close()
    resumed = index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
    assert resumed.files_indexed == 4 and resumed.chunks > first.chunks
    assert not list((idx / "generations").glob("*.partial"))
