"""The final report: systems scored once, test scores read back, label macro-F1 with deltas."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem, EvalSetReader, save_eval_set
from ragsys.pipeline import PipelineConfig
from ragsys.tune.state import TuneState
from tests.fixtures.tune import tune_setup


def _base_and_tuned(tmp_path: Path, base: PipelineConfig) -> TuneState:
    """A finished tune state: `base` saved as the start, a copy with top_k 5 as the tuned pipeline."""
    base.save(tmp_path / "base")
    base.model_copy(update={"name": "tuned", "top_k": 5}).save(tmp_path / "tuned-dir")
    return TuneState(
        seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline=str(tmp_path / "base"),
        base_index=str(tmp_path / "index"), current_pipeline=str(tmp_path / "tuned-dir"),
        current_index=str(tmp_path / "index"),
    )  # fmt: skip


def test_report_scores_a_system_once_when_another_has_the_same_components(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragsys.tune import report as report_mod

    reader, config = tune_setup(tmp_path, tiny_pipeline)
    state = _base_and_tuned(tmp_path, config)
    calls: list[str] = []

    def fake_score(scorer, system, test, answers):  # type: ignore[no-untyped-def]
        calls.append(system.name)
        level = 0.5 if system.config.top_k == 10 else 0.8
        return report_mod.SystemScores(
            {it.id: {"ndcg@10": level + 0.01 * i} for i, it in enumerate(test)}, {}
        )

    monkeypatch.setattr(report_mod, "score_system", fake_score)
    # the isolated control reused every joint component: its name differs, and its saved copy
    # bundles its own copy of the weights
    tuned = PipelineConfig.load(tmp_path / "tuned-dir")
    tuned.model_copy(update={"name": "other"}).save(tmp_path / "isolated-dir")
    same = PipelineConfig.load(tmp_path / "isolated-dir")
    assert same.retrievers != PipelineConfig.load(tmp_path / "tuned-dir").retrievers  # other folders
    isolated = report_mod.System("isolated", same, tmp_path / "index")
    logs: list[str] = []
    out = tmp_path / "out"
    out.mkdir()
    report = report_mod.final_report(state, reader, out, None, isolated, None, logs.append)  # type: ignore[arg-type]
    assert calls == ["baseline", "tuned (joint)"]
    assert any("scores reused" in m for m in logs)
    assert report["systems"]["isolated"]["metrics"] == report["systems"]["tuned (joint)"]["metrics"]
    assert report["joint_vs_isolated"]["metrics"]["ndcg@10"]["delta"] == 0.0
    assert report["tuned_vs_baseline"]["metrics"]["ndcg@10"]["delta"] == pytest.approx(0.3)


def test_report_keeps_test_scores_and_reports_label_macro_f1(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second report (resumed, or re-run to add the control) reads the scores back instead of
    answering the test questions again; labelled questions get macro-F1 with paired deltas."""
    from ragsys.tune import report as report_mod

    items = [
        EvalItem(id=f"t{i}", question=f"question {i}?", split="test", label=("yes", "no", "maybe")[i % 3],
                 gold_doc_ids=(f"d{i}",))
        for i in range(8)
    ]  # fmt: skip
    save_eval_set(items, tmp_path / "ev.jsonl")
    reader = EvalSetReader(tmp_path / "ev.jsonl")
    state = _base_and_tuned(tmp_path, tiny_pipeline.model_copy(update={"name": "base"}))
    calls: list[str] = []

    def fake_score(scorer, system, test, answers):  # type: ignore[no-untyped-def]
        calls.append(system.name)
        tuned = system.config.top_k == 5
        labels = {it.id: (it.label if tuned else "yes") for it in test}  # tuned: always right
        per_query = {q: {"ndcg@10": 0.5, "label_accuracy": float(labels[q] == it.label)}
                     for q, it in zip(labels, test, strict=True)}  # fmt: skip
        return report_mod.SystemScores(per_query, labels)

    monkeypatch.setattr(report_mod, "score_system", fake_score)
    out = tmp_path / "out"
    out.mkdir()
    logs: list[str] = []
    first = report_mod.final_report(state, reader, out, None, None, None, logs.append)  # type: ignore[arg-type]
    assert calls == ["baseline", "tuned (joint)"]
    f1 = first["label_macro_f1"]
    assert f1["systems"]["tuned (joint)"]["value"] == pytest.approx(1.0)
    # always "yes" on 3 yes / 3 no / 2 maybe: F1(yes) = 2 * 3/8 / (1 + 3/8) = 6/11, F1 = 0 for the others
    assert f1["systems"]["baseline"]["counts"] == {"yes": 8, "no": 0, "maybe": 0}
    assert f1["systems"]["baseline"]["value"] == pytest.approx(6 / 11 / 3)
    assert f1["deltas_vs_tuned"]["tuned_vs_baseline"]["delta"] == pytest.approx(1 - 6 / 11 / 3)
    assert f1["deltas_vs_tuned"]["tuned_vs_baseline"]["n"] == 8
    assert "macro-F1" in (out / "report.html").read_text(encoding="utf-8")
    calls.clear()
    second = report_mod.final_report(state, reader, out, None, None, None, logs.append)  # type: ignore[arg-type]
    assert calls == [] and sum("read back" in m for m in logs) == 2
    assert second["label_macro_f1"] == first["label_macro_f1"]
    assert second["tuned_vs_baseline"] == first["tuned_vs_baseline"]
    # other test questions are other scores: nothing is read back for them
    save_eval_set(items[:6], tmp_path / "ev.jsonl")
    report_mod.final_report(state, EvalSetReader(tmp_path / "ev.jsonl"), out, None, None, None, logs.append)  # type: ignore[arg-type]
    assert calls == ["baseline", "tuned (joint)"]


def test_a_system_is_scored_on_every_answer_metric_eval_reports(tiny_pipeline: PipelineConfig) -> None:
    from ragsys.generate.config import GeneratorConfig
    from ragsys.tune.report import System, score_system

    test = [EvalItem(id=f"x{i}", question=f"q{i}?", split="test", answer="$29.6 million") for i in range(3)]

    class Scorer:
        def answer_metrics(self, config: PipelineConfig, index_dir: Path, items: list[EvalItem]) -> tuple:  # type: ignore[type-arg]
            metrics = {
                "numeric_match": 1.0,
                "no_citation_rate": 0.0,
                "citation_precision": 1.0,
                "token_f1": 0.5,
            }
            return {it.id: dict(metrics) for it in items}, {}

    with_gen = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    scores = score_system(Scorer(), System("s", with_gen, Path("idx")), test, None)  # type: ignore[arg-type]
    assert set(scores.per_query) == {"x0", "x1", "x2"}
    assert {"numeric_match", "no_citation_rate", "citation_precision", "token_f1"} <= set(
        scores.per_query["x0"]
    )
