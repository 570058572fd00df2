"""Finished expensive work of a run's data phase, kept so a stopped run does not redo it.

Building KTO thumbs or CLAIR pairs means generating an answer per train question, and
preference methods then score every sequence once under the reference model; on a CPU
either can take longer than a `--max-minutes` budget. Each finished unit (one answer,
one batch of reference log-probs) is appended to `work.jsonl` at once, and a later call
of the same run (same fingerprint) reads it back and continues where the first stopped.
Values are JSON, and Python floats round-trip through it exactly, so the examples built
from cached work are the examples an uninterrupted run builds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ragsys.train.budget import TimeBudget

T = TypeVar("T")


class BudgetExpired(Exception):
    """The time budget ran out while the training data was still being built."""


class WorkCache:
    """Append-only JSONL: a header line with the run fingerprint, then one line per finished unit.

    `path=None` keeps the work in memory only (direct calls of the builders, tests).
    """

    def __init__(
        self, path: Path | None = None, fingerprint: str = "", budget: TimeBudget | None = None
    ) -> None:
        self.path, self.budget = path, budget
        self._done: dict[tuple[str, str], Any] = {}
        if path is not None:
            self._open(path, fingerprint)

    def _open(self, path: Path, fingerprint: str) -> None:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        if lines and json.loads(lines[0]).get("fingerprint") == fingerprint:
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that unit is simply redone
                    continue
                self._done[(row["kind"], row["key"])] = row["value"]
        else:  # another run's work (or none): start afresh
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return len(self._done)

    def has(self, kind: str, key: str) -> bool:
        return (kind, key) in self._done

    def get(self, kind: str, key: str, compute: Callable[[], T]) -> T:
        """The stored value, else `compute()` (after checking the budget), stored before returning."""
        if (kind, key) in self._done:
            stored: T = self._done[(kind, key)]
            return stored
        if self.budget is not None and self.budget.expired:
            raise BudgetExpired(f"time budget ran out while building training data ({len(self)} units kept)")
        value = compute()
        self._done[(kind, key)] = value
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"kind": kind, "key": key, "value": value}) + "\n")
        return value
