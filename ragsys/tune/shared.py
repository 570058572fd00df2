"""`ragsys tune` under `accelerate launch --multi_gpu --num_processes N` (gloo on CPUs).

Every process runs the same orchestration, so all of them enter each trainer together (the
trainers are data-parallel by themselves, `ragsys.train.parallel`). What tune does outside the
trainers goes through `on_main`: the main process alone writes (the state file, the stages'
pipelines, merged weights, synthetic pairs, the report) and alone scores candidates, and the
others take its result. Scoring on main and sharing the scores, rather than scoring on every
process, makes every keep/revert decision the same everywhere by construction: a decision
that differed in its last floating-point digit on one process would send the processes into
different trainers and the run would hang. Started without a launcher, `on_main` just calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ragsys.pipeline import PipelineConfig
from ragsys.train.parallel import World
from ragsys.tune.state import TuneState, save_state

T = TypeVar("T")


def on_main(world: World, fn: Callable[[], T]) -> T:
    """`fn()` on the main process, its result (or the exception it raised) on every process.

    Every process must call this at the same point; `fn` itself must not talk to the others
    (it runs on main alone). The others wait in the broadcast, so they read nothing main
    writes before main has written it."""
    if world.size == 1:
        return fn()
    import torch.distributed as dist

    box: list[Any] = [None]
    if world.main:
        try:
            box[0] = (True, fn())
        except Exception as e:  # raised on every process, so none waits for a step the others skip
            box[0] = (False, e)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def save_config(world: World, config: PipelineConfig, folder: Path) -> None:
    """A stage's candidate pipeline saved into `folder`, once."""

    def save() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config.save(folder)

    on_main(world, save)


def saved(out: Path, state: TuneState, tuned: PipelineConfig | None = None) -> TuneState:
    """Writes the state file (and with `tuned`, the tuned pipeline into `out`); returns `state`,
    so `on_main(world, lambda: saved(out, state))` hands every process main's state."""
    if tuned is not None:
        tuned.save(out)
    save_state(out, state)
    return state
