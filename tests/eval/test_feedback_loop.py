"""eval/feedback_loop.py end to end on tiny random models: the real server on loopback, the
expert's feedback over HTTP, `ragsys tune --feedback`, the hot swap, and the JSON it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # 55 s alone on 2 CPU cores, 100 s beside other tests: two processes load torch
def test_the_loop_runs_end_to_end_and_loses_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "feedback_loop.py"), "--tiny", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["train_questions"] == 4 and result["test_questions"] == 3
    assert result["feedback"]["asked"] == 4
    assert result["feedback"]["up"] + result["feedback"]["down"] == 4
    assert result["feedback"]["revisions"] == result["feedback"]["down"]  # every wrong answer revised
    assert result["acknowledged_feedback"] == 4 and result["lost_feedback"] == 0
    assert result["failed_requests"] == 0 and result["swap"]["failed_during_swap"] == 0
    used = result["tune"]["extra"]["feedback"]  # what tune read: the served version's records only
    assert used["skipped_other_versions"] == 0
    # the judged (dev) questions' feedback is held out of training: the rest is what KTO read
    assert (
        used["skipped_held_out"] >= 1
        and used["thumbs_up"] + used["thumbs_down"] + used["skipped_held_out"] == 4
    )
    assert result["tune"]["extra"]["feedback_version"] == result["versions"]["before"][0]
    assert result["swap"]["previous_version"] == result["versions"]["before"][0]
    assert result["versions"]["after"] == [result["swap"]["pipeline_version"]]
    for metric in ("numeric_match", "citation_precision", "no_citation_rate"):
        block = result["metrics"][metric]
        assert block["n"] == 3 and block["ci95"][0] <= block["delta"] <= block["ci95"][1]
    # the tuner's eval set came from the feedback: the train references are the expert's revisions
    derived = [json.loads(line) for line in (tmp_path / "feedback-evalset.jsonl").read_text().splitlines()]
    train = [d for d in derived if d["split"] == "train"]
    assert len(train) == 4 and all(d["id"].startswith("fb") for d in train)


@pytest.mark.slow  # like the test above: two processes load torch
def test_thumbs_alone_skip_the_preference_stage_and_the_loop_still_finishes(tmp_path: Path) -> None:
    """Thumbs without revisions give the tuner's eval set no reference for a wrong answer, so
    nothing could judge the stage: tune skips it up front (it once trained, then exited 2)."""
    loop = [sys.executable, str(ROOT / "eval" / "feedback_loop.py"), "--tiny", "--thumbs-only"]
    done = subprocess.run(
        [*loop, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "thumbs-only" and result["feedback"]["revisions"] == 0
    if result["feedback"]["up"] == 0:  # the tiny model answers nothing right: no reference at all
        assert result["tune"]["status"] == "skipped" and "reference answer" in result["tune"]["reason"]
    assert result["failed_requests"] == 0 and result["lost_feedback"] == 0
