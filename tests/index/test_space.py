"""A full disk (or an I/O error) while indexing: a typed error naming the index and the space
needed, the current generation intact and searchable, nothing half-written left, and the next
run with space completes. Faults are injected where each kind of write reports them (SQLite,
numpy, faiss, fsync, the manifest); `test_small_filesystem.py` fills a real one."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.index.build import index_paths
from ragsys.index.cache import EmbeddingCache, ExtractionCache
from ragsys.index.errors import IndexError_, IndexSpaceError, IndexWriteError
from ragsys.index.reader import Index
from ragsys.index.space import SpaceNeed, human, tree_bytes
from ragsys.index.store import ChunkStore
from ragsys.index.summary import IndexSummary
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.dense import VectorIndex
from tests.fixtures.corpus import write_corpus

MORE = "Gripper pads wear out after nine thousand picks; the night shift swaps them.\n" * 3
Patch = Callable[[pytest.MonkeyPatch], None]


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _raise(exc: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def _write_then_raise(original: Callable[..., Any], exc: BaseException) -> Callable[..., Any]:
    """The write happens (files land in the partial generation), then the disk is full."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise exc

    return fail


def _fsync_fails_for(fragment: str) -> Patch:
    real = os.fsync

    def fsync(fd: int) -> None:
        if fragment in os.readlink(f"/proc/self/fd/{fd}"):
            raise _enospc()
        real(fd)

    return lambda m: m.setattr(os, "fsync", fsync)


SQLITE_FULL = sqlite3.OperationalError("database or disk is full")
FAISS_FULL = RuntimeError("write error in index.faiss: 0 != 4096 (No space left on device)")  # faiss's text
IO_ERROR = sqlite3.OperationalError("disk I/O error")
FAULTS: dict[str, Patch] = {
    "extraction cache commit": lambda m: m.setattr(ExtractionCache, "put", _raise(SQLITE_FULL)),
    "embedding cache commit": lambda m: m.setattr(EmbeddingCache, "put_many", _raise(SQLITE_FULL)),
    "chunk store commit": lambda m: m.setattr(ChunkStore, "commit", _raise(SQLITE_FULL)),
    "bm25 write": lambda m: m.setattr(BM25Index, "save", _write_then_raise(BM25Index.save, _enospc())),
    "vectors write": lambda m: m.setattr(VectorIndex, "save", _write_then_raise(VectorIndex.save, _enospc())),
    "faiss write": lambda m: m.setattr(VectorIndex, "save", _write_then_raise(VectorIndex.save, FAISS_FULL)),
    "fsync of the generation": _fsync_fails_for(".partial"),
    "manifest write": _fsync_fails_for("manifest.json.tmp"),
    "I/O error": lambda m: m.setattr(ChunkStore, "commit", _raise(IO_ERROR)),
}


def assert_only_generation(idx: Path, first: IndexSummary, config: PipelineConfig) -> None:
    """`first` is what the manifest names, complete and searchable, and nothing else is on disk."""
    index = Index.open(idx)
    try:
        assert index.manifest.generation == first.generation
        assert len(list(index.store.iter_chunks())) == first.chunks
        assert config.build(index).search("harmonic drives grease", k=3)
    finally:
        index.close()
    assert [d.name for d in (idx / "generations").iterdir()] == [first.generation]
    assert not [p.name for p in idx.iterdir() if ".tmp-" in p.name]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fsync faults find files through /proc")
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_write_keeps_the_current_generation_and_the_next_run_completes(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    corpus, idx, spec = write_corpus(tmp_path / "docs"), tmp_path / "idx", tiny_pipeline.index_spec()
    first = index_paths([corpus], idx, spec, workers=1)
    (corpus / "more.txt").write_text(MORE, encoding="utf-8")
    with monkeypatch.context() as m:
        FAULTS[fault](m)
        with pytest.raises(IndexError_) as info:
            index_paths([corpus], idx, spec, workers=1)
    err, message = info.value, str(info.value)
    assert message.startswith(f"{idx}: ") and f"generation {first.generation} is intact" in message
    if fault == "I/O error":
        assert isinstance(err, IndexWriteError) and "disk I/O error" in message
    else:
        assert isinstance(err, IndexSpaceError) and "ran out of disk space" in message
        assert f"needs about {human(err.needed)} and" in message and err.needed > 0 and err.free > 0
    assert_only_generation(idx, first, tiny_pipeline)
    again = index_paths([corpus], idx, spec, workers=1)
    assert (again.generation, again.files_indexed, again.files_new_or_changed) == ("g000002", 4, 1)
    assert [d.name for d in (idx / "generations").iterdir()] == ["g000002"]


def test_a_disk_that_clearly_lacks_the_space_is_refused_before_writing(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, idx, spec = write_corpus(tmp_path / "docs"), tmp_path / "idx", tiny_pipeline.index_spec()
    first = index_paths([corpus], idx, spec, workers=1)
    (corpus / "more.txt").write_text(MORE, encoding="utf-8")
    monkeypatch.setattr("ragsys.index.space.free_bytes", lambda path: 20_000)
    monkeypatch.setattr(ChunkStore, "create", _raise(AssertionError("nothing may be written")))
    with pytest.raises(IndexSpaceError) as info:
        index_paths([corpus], idx, spec, workers=1)
    assert info.value.free == 20_000 and info.value.needed > 20_000
    assert "generation g000002 would not fit: it needs about" in str(info.value)
    assert "20 kB is free" in str(info.value)
    assert_only_generation(idx, first, tiny_pipeline)


def test_the_estimate_is_near_what_a_generation_takes(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within a factor of two both ways, for a first run (text only) and for a second run (the
    current generation scaled by the pages it keeps, plus the new text)."""
    estimates: list[int] = []
    real = SpaceNeed.check_free

    def record(self: SpaceNeed) -> None:
        estimates.append(self.estimate)
        real(self)

    monkeypatch.setattr(SpaceNeed, "check_free", record)
    corpus, idx, spec = write_corpus(tmp_path / "docs"), tmp_path / "idx", tiny_pipeline.index_spec()
    words = "conveyor gripper harvest margin revenue warehouse shift grease drive sensor".split()
    long = " ".join(words[i * 7 % 10] + str(i) for i in range(6000))
    (corpus / "long.txt").write_text(long, encoding="utf-8")
    for run in range(2):
        s = index_paths([corpus], idx, spec, workers=1)
        actual = tree_bytes(idx / "generations" / s.generation)
        assert actual / 2 <= estimates[run] <= actual * 2, (run, estimates[run], actual)
        (corpus / "more.txt").write_text(MORE, encoding="utf-8")


def test_the_cli_exits_non_zero_with_the_message(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, idx = write_corpus(tmp_path / "docs"), tmp_path / "idx"
    (tmp_path / "pipeline").mkdir()
    tiny_pipeline.to_yaml(tmp_path / "pipeline" / "pipeline.yaml")
    args = ["index", str(corpus), "--index", str(idx), "--pipeline", str(tmp_path / "pipeline")]
    assert CliRunner().invoke(app, args).exit_code == 0
    (corpus / "more.txt").write_text(MORE, encoding="utf-8")
    monkeypatch.setattr(BM25Index, "save", _write_then_raise(BM25Index.save, _enospc()))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    said = " ".join(r.output.split())  # rich wraps long lines
    assert "error:" in said and "ran out of disk space: it needs about" in said
    assert "generation g000001 is intact" in said
