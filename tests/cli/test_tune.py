"""`ragsys tune` end to end on a tiny index: the JSON report, the HTML page and progress lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, save_eval_set
from ragsys.index.build import index_paths
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus


def test_cli_tune_end_to_end_on_a_tiny_index(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    index_paths([corpus], tmp_path / "index", tiny_pipeline.index_spec(), workers=1)
    tiny_pipeline.save(tmp_path / "pipe")
    docs = {
        "robots.md": ["picking arm lift", "harmonic drives grease", "arm works all night"],
        "fruit.md": ["strawberries bruise", "harvest floods valley", "harvester per hour"],
        "notes.txt": ["quarterly revenue rose", "gross margin improved", "new arm cheaper"],
    }
    items = [
        EvalItem(id=f"{n}-{i}-{s}", question=q, split=s, gold_doc_ids=(str((corpus / n).resolve()),))
        for n, qs in docs.items()
        for i, q in enumerate(qs)
        for s in ("train", "test")
    ]
    save_eval_set(items, tmp_path / "ev.jsonl")
    args = [
        "tune",
        "--index",
        str(tmp_path / "index"),
        "--eval-set",
        str(tmp_path / "ev.jsonl"),
        "--pipeline",
        str(tmp_path / "pipe"),
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
