"""Indexing into a real filesystem that fills up: a tmpfs of 1 MB the test mounts (root only).

`test_space.py` injects each kind of disk-full error and always runs; this one checks that a
real full disk surfaces as the same typed error, whichever write it hits first."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragsys.index.build import index_paths
from ragsys.index.errors import IndexSpaceError
from ragsys.index.space import SpaceNeed
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus
from tests.index.test_space import assert_only_generation


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; test_space.py injects the same errors")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _words(n: int) -> str:
    """Text that neither compresses nor dedupes away: distinct tokens, plain words between."""
    return " ".join(f"pallet{i * 7919 % 100003} conveyor grease" for i in range(n))


@pytest.mark.parametrize("up_front", [True, False], ids=["refused up front", "fills up mid-run"])
def test_a_full_small_disk_keeps_the_index_and_a_bigger_one_completes(
    small_disk: Path, tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch,
    up_front: bool,
) -> None:  # fmt: skip
    corpus, idx, spec = write_corpus(tmp_path / "docs"), small_disk / "idx", tiny_pipeline.index_spec()
    first = index_paths([corpus], idx, spec, workers=1)
    (corpus / "big.txt").write_text(_words(12000), encoding="utf-8")  # ~360k characters: ~3 MB indexed
    if not up_front:  # skip the check so the disk really fills while the generation is written
        monkeypatch.setattr(SpaceNeed, "check_free", lambda self: None)
    with pytest.raises(IndexSpaceError) as info:
        index_paths([corpus], idx, spec, workers=1)
    said = str(info.value)
    assert ("would not fit" if up_front else "ran out of disk space") in said, said
    assert info.value.needed > 1_000_000 > info.value.free
    assert_only_generation(idx, first, tiny_pipeline)
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = index_paths([corpus], idx, spec, workers=1)
    assert (again.generation, again.files_indexed) == ("g000002", 4)
    assert [d.name for d in (idx / "generations").iterdir()] == ["g000002"]
