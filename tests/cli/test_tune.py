"""`ragsys tune` end to end on a tiny index: the JSON report, the HTML page and progress lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_tune_inputs


def test_cli_tune_end_to_end_on_a_tiny_index(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    args = [
        "tune",
        *write_tune_inputs(tmp_path, tiny_pipeline),
        "--out",
        str(tmp_path / "tuned"),
        "--stages",
        "retriever,mixture",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["test_questions"] == 9 and {"baseline", "tuned (joint)"} <= set(report["systems"])
    assert "ndcg@10" in report["systems"]["baseline"]["metrics"]
    assert (tmp_path / "tuned" / "report.html").read_text().startswith("<!doctype html>")
    assert PipelineConfig.load(tmp_path / "tuned").retrievers  # the tuned pipeline loads with --pipeline
    # not a terminal: progress comes as plain lines a log file can be followed with
    assert re.search(r"^mining: \d+/\d+ \(\d\d:\d\d:\d\d, [\d.]+ min\)$", result.output, re.M), result.output
    # the retriever stage's re-embedding of the corpus shows too (it is minutes of the stage)
    assert re.search(r"^re-embedding the corpus: embed \S+: (\d+)/\1 ", result.output, re.M), result.output
    bad = CliRunner().invoke(app, [*args[:-3], "--stages", "retriever,nonsense"])
    assert bad.exit_code == 2 and "unknown stage" in bad.output
    bad = CliRunner().invoke(app, [*args, "--sft-contexts", "gold"])
    assert bad.exit_code == 2 and "--sft-contexts 'gold'" in bad.output
