"""Data-parallel training under `accelerate launch --multi_gpu --num_processes 2` (gloo on CPU):
the LoRA generator loop and the encoder's trainer give what one process gives, checkpoints are
written once, and a stopped two-process run resumes to the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

LORA = Path(__file__).with_name("accelerate_lora.py")
ENCODER = Path(__file__).with_name("accelerate_encoder.py")
ACCELERATE = Path(sys.executable).with_name("accelerate")
pytestmark = pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate's launcher is not installed")


def launch(processes: int, lm: Path, out: Path, minutes: str = "none", script: Path = LORA) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path.cwd()))
    if processes == 1:
        cmd = [sys.executable, str(script)]
    else:  # without --multi_gpu, accelerate starts one process on a machine without GPUs
        cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines",
               "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]  # fmt: skip
    proc = subprocess.run([*cmd, str(lm), str(out), minutes], env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads((out / "result.json").read_text())  # type: ignore[no-any-return]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=1e-5), name


def test_two_processes_train_the_adapter_one_process_trains(tmp_path: Path, tiny_lm_path: Path) -> None:
    one = launch(1, tiny_lm_path, tmp_path / "one")
    two = launch(2, tiny_lm_path, tmp_path / "two")
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["steps"] == two["steps"] == 6  # 12 examples, batches of 4, 2 epochs: global batches
    assert one["epoch_losses"] == pytest.approx(two["epoch_losses"], abs=1e-5)
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    base = load_file(str(tmp_path / "one" / "weights.safetensors"))
    assert any(float(t.abs().sum()) > 0 for n, t in base.items() if "lora_B" in n), "the adapter moved"
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "checkpoints").iterdir()
    )


def test_a_stopped_two_process_run_resumes_to_the_same_adapter(tmp_path: Path, tiny_lm_path: Path) -> None:
    one = tmp_path / "one"
    launch(1, tiny_lm_path, one)
    stopped = launch(2, tiny_lm_path, tmp_path / "two", minutes="0.000001")  # expires after the first step
    assert stopped["stopped_early"] and stopped["steps"] == 1
    resumed = launch(2, tiny_lm_path, tmp_path / "two")
    assert resumed["resumed_from"] and not resumed["stopped_early"] and resumed["steps"] == 6
    assert_same_weights(one, tmp_path / "two")


def test_two_processes_train_the_encoder_as_one_and_resume(tmp_path: Path, tiny_st_path: Path) -> None:
    one = launch(1, tiny_st_path, tmp_path / "one", script=ENCODER)
    two = launch(2, tiny_st_path, tmp_path / "two", script=ENCODER)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["steps"] == two["steps"] == 4  # 8 examples, batches of 4 (2 per process), 2 epochs
    assert np.allclose(one["vectors"], two["vectors"], atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    stopped = launch(2, tiny_st_path, tmp_path / "stopped", minutes="0.000001", script=ENCODER)
    assert stopped["stopped_early"] and stopped["steps"] < 4
    resumed = launch(2, tiny_st_path, tmp_path / "stopped", script=ENCODER)
    assert resumed["resumed_from"] and not resumed["stopped_early"] and resumed["steps"] == 4
    assert np.allclose(one["vectors"], resumed["vectors"], atol=1e-5)
