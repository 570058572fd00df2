"""The writer lock: a second `ragsys index` on the same folder is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.index.build import index_paths
from ragsys.index.errors import IndexLockedError
from ragsys.index.lock import WriterLock
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus


def test_second_writer_is_refused(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    with WriterLock(tmp_path / "idx"), pytest.raises(IndexLockedError):
        index_paths([corpus], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
