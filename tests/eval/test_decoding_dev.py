"""eval/decoding_dev.py on tiny random models: a decoding setting judged on the non-test questions
only, before vs after, paired, and a bad setting named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "eval" / "decoding_dev.py"), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def test_a_setting_is_judged_on_the_non_test_questions_alone(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from eval.bench.serve_load import tiny_setup
    from eval.feedback_loop import TINY_ITEMS, tiny_eval_set

    index, pipeline = tiny_setup(tmp_path)
    eval_set = tiny_eval_set(index, tmp_path / "evalset.jsonl")
    out = tmp_path / "dev.json"
    common = ["--pipeline", str(pipeline), "--index", str(index), "--eval-set", str(eval_set)]
    # the tiny Llama's greedy answer repeats one token: banning repeated pairs changes it
    done = _run(*common, "--set", "no_repeat_ngram=2", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    train = {i for i, *_, split in TINY_ITEMS if split != "test"}
    assert summary["questions"] == len(train) and summary["settings"] == {"no_repeat_ngram": "2"}
    record = json.loads(out.read_text(encoding="utf-8"))
    assert (
        set(record["answers"]["before"]) == set(record["answers"]["after"]) == train
    )  # never a test question
    assert record["answers"]["before"] != record["answers"]["after"]
    assert record["metrics"]["token_f1"]["n"] == len(train)
    bad = _run(*common, "--set", "no_repeat_gram=2")
    assert bad.returncode != 0 and "no_repeat_gram" in bad.stderr and "Traceback" not in bad.stderr
    # --base changes both sides first: "before" is now what the setting gave above
    first = record["answers"]["after"]
    same = _run(*common, "--base", "no_repeat_ngram=2", "--set", "no_repeat_ngram=2", "--out", str(out))
    assert same.returncode == 0, same.stderr[-3000:]
    based = json.loads(out.read_text(encoding="utf-8"))
    assert based["base"] == {"no_repeat_ngram": "2"}
    assert based["answers"]["before"] == based["answers"]["after"] == first
