"""`ragsys eval` end to end: retrieval metrics with CIs, reports and baselines, scored answers and
labels, and a learned mixture fitted on the train questions only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, save_eval_set
from ragsys.fusion import LearnedMixtureConfig
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus

runner = CliRunner()
QUESTIONS = [
    ("q1", "how often do harmonic drives need grease", "robots.md", "train"),
    ("q2", "how many strawberries per hour", "fruit.md", "train"),
    ("q3", "why did growers postpone fleets", "fruit.md", "train"),
    ("q4", "what happened to revenue this quarter", "notes.txt", "train"),
    ("q5", "how much can the picking arm lift", "robots.md", "test"),
    ("q6", "why did gross margin improve", "notes.txt", "test"),
    ("q7", "what ruined the harvest", "fruit.md", "test"),
]


@pytest.fixture()
def setup(tmp_path: Path, tiny_pipeline: PipelineConfig) -> tuple[str, str, Path]:
    corpus = write_corpus(tmp_path / "docs")
    pdir = tmp_path / "pipeline"
    pdir.mkdir()
    tiny_pipeline.to_yaml(pdir / "pipeline.yaml")
    idx = str(tmp_path / "idx")
    r = runner.invoke(app, ["index", str(corpus), "--index", idx, "--pipeline", str(pdir), "--workers", "1"])
    assert r.exit_code == 0, r.output
    items = [EvalItem(id=i, question=q, gold_doc_ids=(g,), split=s) for i, q, g, s in QUESTIONS]
    save_eval_set(items, tmp_path / "set.jsonl")
    return idx, str(pdir), tmp_path


def _eval(idx: str, pdir: str, tmp: Path, *extra: str) -> dict[str, object]:
    args = ["eval", "--index", idx, "--eval-set", str(tmp / "set.jsonl"), "--pipeline", pdir]
    r = runner.invoke(app, [*args, "--out", str(tmp / "runs"), "--json", *extra])
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def test_eval_json_report_and_baseline(setup: tuple[str, str, Path]) -> None:
    idx, pdir, tmp = setup
    out = _eval(idx, pdir, tmp, "--name", "first")
    assert out["n"] == 3
    metrics, ci = out["metrics"], out["ci95"]
    assert isinstance(metrics, dict) and isinstance(ci, dict)
    assert set(metrics) >= {"ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10"}
    assert all(0 <= metrics[m] <= 1 and ci[m][0] <= metrics[m] <= ci[m][1] for m in ci)
    record = json.loads((tmp / "runs" / "first.json").read_text())
    assert set(record["per_query"]) == {"q5", "q6", "q7"} and record["split"] == "test"
    assert "<svg" in (tmp / "runs" / "first.html").read_text()
    _eval(idx, pdir, tmp, "--name", "second", "--baseline", str(tmp / "runs" / "first.json"))
    second = json.loads((tmp / "runs" / "second.json").read_text())
    assert second["comparison"]["metrics"]["ndcg@10"]["p_value"] == 1.0


def test_learned_mixture_fits_on_train_only(
    setup: tuple[str, str, Path], tiny_pipeline: PipelineConfig
) -> None:
    idx, _, tmp = setup
    mix = tiny_pipeline.model_copy(update={"fusion": LearnedMixtureConfig(dev_fraction=1.0)})
    mdir = tmp / "mixture"
    mdir.mkdir()
    mix.to_yaml(mdir / "pipeline.yaml")
    out = _eval(idx, str(mdir), tmp, "--name", "mix")
    assert out["n"] == 3
    record = json.loads((tmp / "runs" / "mix.json").read_text())
    assert record["mixture_fit"]["dev_queries"] == 4  # the four train questions, none of test
    r = runner.invoke(app, ["train", "mixture", "--index", idx, "--eval-set", str(tmp / "set.jsonl"),
                            "--pipeline", str(mdir), "--out", str(tmp / "fitted")])  # fmt: skip
    assert r.exit_code == 0, r.output
    fitted = PipelineConfig.from_yaml(tmp / "fitted" / "pipeline.yaml")
    assert isinstance(fitted.fusion, LearnedMixtureConfig) and fitted.fusion.fitted is not None
    r = runner.invoke(app, ["search", "harvest", "--index", idx, "--pipeline", str(tmp / "fitted"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["hits"]


def test_unfitted_mixture_cannot_search(setup: tuple[str, str, Path], tiny_pipeline: PipelineConfig) -> None:
    idx, _, tmp = setup
    mdir = tmp / "m2"
    mdir.mkdir()
    tiny_pipeline.model_copy(update={"fusion": LearnedMixtureConfig()}).to_yaml(mdir / "pipeline.yaml")
    r = runner.invoke(app, ["search", "harvest", "--index", idx, "--pipeline", str(mdir)])
    assert r.exit_code == 2 and "ragsys train mixture" in r.output


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
