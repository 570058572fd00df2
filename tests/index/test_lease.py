"""Reader leases: a generation a reader holds outlives later runs and goes once released."""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path

import pytest

from ragsys.index import lease as lease_module
from ragsys.index import reader as reader_module
from ragsys.index.build import index_paths
from ragsys.index.errors import IndexFormatError
from ragsys.index.lease import REMOVING, remove_if_unleased, take_lease
from ragsys.index.manifest import read_manifest
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus


def _generations(idx: Path) -> list[str]:
    return sorted(d.name for d in (idx / "generations").iterdir())


def test_a_held_generation_outlives_later_runs_and_goes_once_released(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    corpus, idx, spec = write_corpus(tmp_path / "docs"), tmp_path / "idx", tiny_pipeline.index_spec()
    index_paths([corpus], idx, spec, workers=1)
    held = Index.open(idx)
    chunks = list(held.store.iter_chunks())
    for n in (2, 3):
        (corpus / f"new{n}.txt").write_text(f"Shift {n} restocked the gripper pads.\n", encoding="utf-8")
        index_paths([corpus], idx, spec, workers=1)
    assert _generations(idx) == ["g000001", "g000003"]  # g000002 was never held: removed at once
    assert list(held.store.iter_chunks()) == chunks  # the reader still reads its whole generation
    held.close()
    index_paths([corpus], idx, spec, workers=1)  # nothing changed: the run only cleans up
    assert _generations(idx) == ["g000003"]


def test_remove_waits_for_every_lease(tmp_path: Path) -> None:
    gen = tmp_path / "g000001"
    gen.mkdir()
    first, second = take_lease(gen), take_lease(gen)
    assert first is not None and second is not None
    first.release()
    assert not remove_if_unleased(gen) and gen.is_dir()
    second.release()
    second.release()  # idempotent
    assert remove_if_unleased(gen) and not gen.exists()
    assert not (tmp_path / f"g000001{REMOVING}").exists()


def test_a_lease_taken_while_the_writer_removes_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader opened the directory, then the writer took it away before the reader's lock."""
    gen = tmp_path / "g000001"
    gen.mkdir()
    real = fcntl.flock

    def writer_first(fd: int, op: int) -> None:
        if op == fcntl.LOCK_SH:
            assert remove_if_unleased(gen)
        real(fd, op)

    monkeypatch.setattr(lease_module.fcntl, "flock", writer_first)
    assert take_lease(gen) is None
    assert take_lease(tmp_path / "never-was") is None


def test_open_reads_the_manifest_again_when_its_generation_went_away(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, idx, spec = write_corpus(tmp_path / "docs"), tmp_path / "idx", tiny_pipeline.index_spec()
    index_paths([corpus], idx, spec, workers=1)
    stale = read_manifest(idx)
    (corpus / "new.txt").write_text("A later run switched and removed g000001.\n", encoding="utf-8")
    index_paths([corpus], idx, spec, workers=1)
    answers = iter([stale])
    monkeypatch.setattr(reader_module, "read_manifest", lambda p: next(answers, None) or read_manifest(p))
    index = Index.open(idx)
    assert index.manifest.generation == "g000002"
    index.close()


def test_a_manifest_naming_a_missing_generation_is_a_typed_error(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    corpus, idx = write_corpus(tmp_path / "docs"), tmp_path / "idx"
    index_paths([corpus], idx, tiny_pipeline.index_spec(), workers=1)
    (idx / "generations" / "g000001").rename(tmp_path / "elsewhere")
    with pytest.raises(IndexFormatError, match="generation g000001 is missing; re-index"):
        Index.open(idx)


def test_without_directory_locks_nothing_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock on a directory fails (some NFS setups) readers still read and the writer,
    unable to tell whether one does, keeps the generation."""
    gen = tmp_path / "g000001"
    gen.mkdir()

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.EBADF, "flock on a directory is not supported here")

    monkeypatch.setattr(lease_module.fcntl, "flock", no_locks)
    held = take_lease(gen)
    assert held is not None
    held.release()
    assert not remove_if_unleased(gen) and gen.is_dir()
