"""Opening an index: a missing one is a typed error that names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.index.errors import IndexNotFoundError
from ragsys.index.reader import Index


def test_missing_index_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="ragsys index"):
        Index.open(tmp_path / "nothing")
