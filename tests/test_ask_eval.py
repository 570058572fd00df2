"""`ragsys ask` and end-to-end eval (answers, labels, citations) on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, save_eval_set
from ragsys.generate.hf import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from tests.corpus import write_corpus

runner = CliRunner()


@pytest.fixture()
def rag(tmp_path: Path, tiny_pipeline: PipelineConfig, tiny_lm_path: Path) -> tuple[str, str, Path]:
    config = tiny_pipeline.model_copy(
        update={
            "generator": GeneratorConfig(
                model=str(tiny_lm_path), max_new_tokens=8, context_tokens=64, system_prompt="Answer briefly."
            )
        }
    )
    pdir = tmp_path / "pipeline"
    config.save(pdir)
    idx = str(tmp_path / "idx")
    corpus = write_corpus(tmp_path / "docs")
    r = runner.invoke(app, ["index", str(corpus), "--index", idx, "--pipeline", str(pdir), "--workers", "1"])
    assert r.exit_code == 0, r.output
    return idx, str(pdir), tmp_path


def test_ask_json_shape(rag: tuple[str, str, Path]) -> None:
    idx, pdir, _ = rag
    r = runner.invoke(app, ["ask", "how often do drives need grease", "--index", idx, "--pipeline", pdir,
                            "-k", "3", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) >= {"answer", "abstained", "citations", "contexts", "timings"}
    assert isinstance(out["answer"], str) and isinstance(out["abstained"], bool)
    assert 1 <= len(out["contexts"]) <= 3
    assert set(out["contexts"][0]) >= {"doc", "page_start", "page_end", "chunk_id", "text"}
    assert out["timings"]["new_tokens"] <= 8 and "retrieve_s" in out["timings"]


def test_ask_refuses_a_pipeline_without_generator(
    rag: tuple[str, str, Path], tiny_pipeline: PipelineConfig
) -> None:
    idx, _, tmp = rag
    tiny_pipeline.save(tmp / "nogen")
    r = runner.invoke(app, ["ask", "anything", "--index", idx, "--pipeline", str(tmp / "nogen")])
    assert r.exit_code == 2 and "no generator" in r.output


@pytest.mark.parametrize("rule", ["constrained", "rule"])
def test_eval_scores_answers_and_labels(rag: tuple[str, str, Path], rule: str) -> None:
    idx, pdir, tmp = rag
    items = [
        EvalItem(id="a", question="do drives need grease", answer="yes every four thousand hours",
                 label="yes", gold_doc_ids=("robots.md",), split="test"),
        EvalItem(id="b", question="did revenue fall", answer="no it rose", label="no",
                 gold_doc_ids=("notes.txt",), split="test"),
    ]  # fmt: skip
    save_eval_set(items, tmp / "qa.jsonl")
    args = ["eval", "--index", idx, "--eval-set", str(tmp / "qa.jsonl"), "--pipeline", pdir]
    r = runner.invoke(
        app, [*args, "--out", str(tmp / "runs"), "--name", f"qa-{rule}", "--label-rule", rule, "--json"]
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout.strip().splitlines()[-1])["metrics"]
    assert {"ndcg@10", "token_f1", "rouge_l", "exact_match", "abstained", "label_accuracy", "label_macro_f1",
            "citation_precision", "citation_recall"} <= set(metrics)  # fmt: skip
    record = json.loads((tmp / "runs" / f"qa-{rule}.json").read_text())
    assert record["label_rule"] == rule
    assert {a["label"] for a in record["answers"].values()} <= {"yes", "no", "maybe"}
    assert record["majority_class_accuracy"] == 0.5
