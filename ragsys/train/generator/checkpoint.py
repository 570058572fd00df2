"""Checkpoints of a generator run: everything needed to continue bit-for-bit.

A checkpoint folder holds the adapter (`adapter/`, the same format as the final one), the
optimizer's tensors and the RNG states in `tensors.safetensors`, and the rest (loop
position, losses so far, this epoch's batch order, scheduler, param groups, Python and
NumPy RNG) in `state.json`, written last: a folder without it is incomplete and ignored.
Nothing is pickled, so opening someone's checkpoint cannot run code.

Names: `epoch-N` after epoch N (1-based) finished, `epoch-N-step-S` when the time budget
ran out S optimizer steps into epoch N. The newest is the one with the most steps.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragsys.fsutil import atomic_dir
from ragsys.train.lora import load_adapter_weights, save_adapter

STATE = "state.json"
TENSORS = "tensors.safetensors"


@dataclass
class LoopState:
    """Where the loop is: `batch` micro-batches of epoch `epoch` (0-based) are done."""

    epoch: int = 0
    batch: int = 0
    step: int = 0  # optimizer steps over the whole run
    epoch_losses: list[float] = field(default_factory=list)
    loss_sum: float = 0.0  # over the current epoch's micro-batches so far
    loss_count: int = 0
    order: list[list[int]] = field(default_factory=list)  # the current epoch's batches (example indices)


def checkpoint_name(state: LoopState, epoch_done: bool) -> str:
    if epoch_done:
        return f"epoch-{state.epoch}"  # state.epoch already counts the finished epoch
    return f"epoch-{state.epoch + 1}-step-{state.step}"


def latest_checkpoint(root: Path) -> Path | None:
    """The complete checkpoint with the most optimizer steps (ties: the finished epoch)."""
    if not root.is_dir():
        return None
    found: list[tuple[int, int, Path]] = []
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith(".") and (d / STATE).is_file():
            state = json.loads((d / STATE).read_text(encoding="utf-8"))["loop"]
            found.append((int(state["step"]), int(state["batch"] == 0), d))
    return max(found)[2] if found else None


def save_checkpoint(
    root: Path, name: str, model: Any, optimizer: Any, scheduler: Any, state: LoopState, fingerprint: str
) -> Path:
    from safetensors.torch import save_file

    dest = root / name
    with atomic_dir(dest) as tmp:
        save_adapter(model, tmp / "adapter")
        tensors, opt_meta = _optimizer_tensors(optimizer.state_dict())
        save_file(tensors | _rng_tensors(), str(tmp / TENSORS))
        meta = {
            "fingerprint": fingerprint,
            "loop": asdict(state),
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict(),
            "python_rng": _python_rng(),
            "numpy_rng": _numpy_rng(),
        }
        (tmp / STATE).write_text(json.dumps(meta), encoding="utf-8")
    return dest


def prune_step_checkpoints(root: Path, keep: Path) -> None:
    """Mid-epoch checkpoints are only needed until a newer one exists; epoch ones stay."""
    for d in root.iterdir():
        if d.is_dir() and d != keep and "-step-" in d.name:
            shutil.rmtree(d, ignore_errors=True)


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, fingerprint: str) -> LoopState:
    """Restore adapter, optimizer, scheduler and RNGs; refuse a checkpoint of a different run."""
    from safetensors.torch import load_file

    meta = json.loads((path / STATE).read_text(encoding="utf-8"))
    if meta["fingerprint"] != fingerprint:
        raise ValueError(
            f"{path} belongs to a run with different settings or data; resume with the same settings, "
            "or pass a new output folder (or delete its checkpoints/ to start over)"
        )
    load_adapter_weights(model, path / "adapter")
    tensors = load_file(str(path / TENSORS))
    optimizer.load_state_dict(_optimizer_state(tensors, meta["optimizer"], model_device(model)))
    scheduler.load_state_dict(meta["scheduler"])
    _restore_rng(tensors, meta["python_rng"], meta["numpy_rng"])
    return LoopState(**meta["loop"])


def model_device(model: Any) -> Any:
    return next(p for p in model.parameters() if p.requires_grad).device


def _optimizer_tensors(sd: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer state dict into named tensors and JSON-able rest."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in sd["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, Any], meta: dict[str, Any], device: Any) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            # AdamW keeps `step` on the CPU unless capturable/fused; the rest beside the params
            state.setdefault(int(idx), {})[key] = value if key == "step" else value.to(device)
    for idx, rest in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(rest)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_tensors() -> dict[str, Any]:
    import torch

    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return out


def _python_rng() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_rng() -> list[Any]:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def _restore_rng(tensors: dict[str, Any], python: list[Any], numpy_state: list[Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["rng.torch"])
    cuda_keys = sorted(
        (k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1])
    )
    cuda = [tensors[k] for k in cuda_keys]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, pos, has_gauss, cached = numpy_state
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
