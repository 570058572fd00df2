"""`ragsys tune` under `accelerate launch --multi_gpu --num_processes 2` (gloo on CPU): the same
decisions and report as one process, one set of files written by the main process, and a
two-process run that resumes from its state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_tune_inputs

ACCELERATE = Path(sys.executable).with_name("accelerate")
pytestmark = pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate's launcher is not installed")


def tune(processes: int, args: list[str], out: Path, stages: str) -> str:
    """Runs `ragsys tune` in `processes` processes; returns its stderr (progress and log lines)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path.cwd()))
    if processes == 1:
        cmd = [sys.executable]
    else:  # without --multi_gpu, accelerate starts one process on a machine without GPUs
        cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines",
               "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    cmd += ["-m", "ragsys.cli", "tune", *args, "--out", str(out), "--stages", stages]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())  # type: ignore[no-any-return]


def files(out: Path, under: str) -> set[str]:
    """Relative paths, a bundled model's folder named by kind (its name carries a content hash)."""
    found = {p.relative_to(out).parts for p in (out / under).rglob("*") if p.is_file()}
    kind = [
        [x.rsplit("-", 3)[0] if i and p[i - 1] == "models" else x for i, x in enumerate(p)] for p in found
    ]
    return {"/".join(parts) for parts in kind}


def test_two_processes_tune_as_one_writes_once_and_resume(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    args = write_tune_inputs(tmp_path, tiny_pipeline)
    one, two = tmp_path / "one", tmp_path / "two"
    log_one = tune(1, args, one, "scope,mixture")
    # two processes: the scope stage and its report, then a resumed run adds the mixture stage
    first = tune(2, args, two, "scope")
    resumed = tune(2, args, two, "scope,mixture")
    assert "data-parallel over 2 processes" in first and "data-parallel" not in log_one
    assert "stage scope: already skipped (resumed)" in resumed, resumed[-3000:]
    assert first.count("report: ") == resumed.count("report: ") == 1  # only the main process reports
    a, b = report(one), report(two)
    assert [(s["name"], s["status"]) for s in a["stages"]] == [(s["name"], s["status"]) for s in b["stages"]]
    assert b["stages"][1]["decision"] is not None  # the mixture stage was fitted, scored on dev and judged
    assert b["stages"][1]["decision"]["kept"] == a["stages"][1]["decision"]["kept"]
    assert a["systems"].keys() == b["systems"].keys() and "tuned (joint)" in a["systems"]
    for name, system in a["systems"].items():
        assert system["metrics"] == pytest.approx(b["systems"][name]["metrics"], abs=1e-3), name
    # one set of files: the stages' folders hold what one process writes, nothing half-written
    assert files(one, "stages") == files(two, "stages")
    assert not [p for p in two.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
