"""The work cache: finished units survive a crash or a spent budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.train.budget import TimeBudget
from ragsys.train.generator.cache import BudgetExpired, WorkCache


def test_work_cache_keeps_finished_units_across_calls(tmp_path: Path) -> None:
    path, calls = tmp_path / "work.jsonl", []

    def compute() -> list[float]:
        calls.append(1)
        return [0.1 + 0.2, -1e-300]

    assert WorkCache(path, "run-a").get("reference", "0.0", compute) == [0.1 + 0.2, -1e-300]
    assert WorkCache(path, "run-a").get("reference", "0.0", compute) == [0.1 + 0.2, -1e-300]  # exact floats
    assert len(calls) == 1
    with path.open("a") as f:
        f.write('{"kind": "reference", "key": "cut')  # a line a crash cut short is redone, not fatal
    assert len(WorkCache(path, "run-a")) == 1
    assert len(WorkCache(path, "run-b")) == 0  # another run's work is discarded
    with pytest.raises(BudgetExpired):
        WorkCache(path, "run-b", TimeBudget(0.0)).get("thumb", "1", compute)
    assert len(calls) == 1
