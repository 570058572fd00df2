"""What `ragsys tune` has done so far, written after every stage so an interrupted run resumes.

The state is one JSON file replaced atomically (write, fsync, rename): a `kill -9` leaves
either the previous state or the new one, never half of each. A stage that was running
when the process died has no record, so it runs again; its trainer resumes from its own
checkpoints in the stage's folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ragsys.fsutil import atomic_write_text
from ragsys.tune.decide import Decision
from ragsys.types import Frozen

STATE_FILE = "tune-state.json"
Scores = dict[str, float]  # question id -> metric value


class StageRecord(Frozen):
    name: str
    status: Literal["kept", "reverted", "skipped"]
    reason: str
    metric: str | None = None
    decision: Decision | None = None
    minutes: float = 0.0
    pipeline_dir: str | None = None  # what the stage produced, kept or not (the ablation uses it)
    index_dir: str | None = None
    extra: dict[str, Any] = {}


def kept_stages(records: Sequence[StageRecord]) -> list[StageRecord]:
    """Kept stages that changed the pipeline: each has an ablation row in the report and a part
    in the isolated control (data stages such as synthetic queries do not)."""
    return [r for r in records if r.status == "kept" and r.metric is not None]


class TuneState(Frozen):
    seed: int
    eval_set: str
    train_ids: tuple[str, ...]
    dev_ids: tuple[str, ...]
    base_pipeline: str
    base_index: str
    current_pipeline: str
    current_index: str
    stages: tuple[StageRecord, ...] = ()
    scores: dict[str, Scores] = {}  # "<pipeline dir>::<metric>" -> per-question dev scores
    labels: dict[str, dict[str, str]] = {}  # same keys: the label each dev answer chose (closed sets)
    minutes: float = 0.0
    folds: tuple[tuple[str, ...], ...] = ()  # cross-fitting's folds of the non-test question ids

    def done(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)


def score_key(pipeline_dir: str, metric: str) -> str:
    return f"{pipeline_dir}::{metric}"


def save_state(out: Path, state: TuneState) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / STATE_FILE, json.dumps(state.model_dump(mode="json"), indent=1))


def load_state(out: Path) -> TuneState | None:
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        return TuneState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: damaged tune state ({e}); delete it to start over") from e
