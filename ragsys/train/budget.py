"""What every trainer shares: a wall-clock budget, checkpoint discovery and seeding.

`--max-minutes` is a promise to the user that a training command ends in time; trainers
check the budget after every optimizer step and stop cleanly (saving a checkpoint), so a
later run with the same output folder resumes instead of starting over.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
Progress = Callable[[int, int], None]  # (steps done, total steps)


class TimeBudget:
    """A deadline `max_minutes` from construction; `None` means no limit."""

    def __init__(self, max_minutes: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._deadline = math.inf if max_minutes is None else self._start + 60.0 * max_minutes

    @property
    def expired(self) -> bool:
        return self._clock() >= self._deadline

    def remaining_s(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def spent_share(self) -> float:
        """The share of the budget used so far (0 without a limit)."""
        if math.isinf(self._deadline):
            return 0.0
        return min(1.0, (self._clock() - self._start) / max(self._deadline - self._start, 1e-9))


class BudgetCallback(TrainerCallback):  # type: ignore[misc]
    """Stops a `transformers`/sentence-transformers trainer when the budget runs out, saving first."""

    def __init__(self, budget: TimeBudget) -> None:
        self.budget = budget
        self.stopped_early = False

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if self.budget.expired:
            self.stopped_early = True
            control.should_training_stop = True
            control.should_save = True
        return control


class StepProgressCallback(TrainerCallback):  # type: ignore[misc]
    """Reports (step, total) to the caller's progress bar after every optimizer step."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        self.progress(int(state.global_step), int(state.max_steps))
        return control


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder (one with `trainer_state.json`), if any."""
    if not output_dir.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for d in output_dir.iterdir():
        m = CHECKPOINT_RE.match(d.name)
        if m and d.is_dir() and (d / "trainer_state.json").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
