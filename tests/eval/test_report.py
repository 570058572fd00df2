from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragsys.eval.report import build_run_record, compare_runs, load_run, write_report


def _per_query(shift: float, n: int = 40) -> dict[str, dict[str, float]]:
    return {f"q{i}": {"ndcg@10": min(1.0, (i % 10) / 10 + shift), "mrr@10": (i % 4) / 4} for i in range(n)}


def test_record_shape_means_and_cis() -> None:
    pq = _per_query(0.0)
    record = build_run_record("r", {"config": {"k": 10}, "metrics": {"macro_f1": 0.4}}, pq, n_resamples=500)
    assert record["n"] == 40 and record["name"] == "r" and record["config"] == {"k": 10}
    assert record["metrics"]["ndcg@10"] == pytest.approx(0.45) and record["metrics"]["macro_f1"] == 0.4
    lo, hi = record["ci95"]["ndcg@10"]
    assert lo < 0.45 < hi and "macro_f1" not in record["ci95"]
    assert record["seed"] == 0 and record["n_resamples"] == 500


def test_write_report_files_and_html_table(tmp_path: Path) -> None:
    run = {"q0": [["d1", 2.0], ["d2", 1.0]]}
    json_path, html_path = write_report(
        tmp_path / "out", "bm25-test", {"run": run, "seed": 3}, _per_query(0.0)
    )
    assert (json_path.name, html_path.name) == ("bm25-test.json", "bm25-test.html")
    record = json.loads(json_path.read_text())
    assert (
        record["run"] == run
        and record["seed"] == 3
        and set(record["per_query"]) == {f"q{i}" for i in range(40)}
    )
    page = html_path.read_text()
    assert "<table class='metrics'>" in page and "<td>ndcg@10</td><td>0.4500</td>" in page
    assert "<svg class='bars'" in page and "comparison" not in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_baseline_comparison_in_json_and_html(tmp_path: Path) -> None:
    base_json, _ = write_report(tmp_path, "base", {}, _per_query(0.0), n_resamples=1000)
    baseline = load_run(base_json)
    cur_json, cur_html = write_report(
        tmp_path, "cur", {}, _per_query(0.1), baseline=baseline, n_resamples=1000
    )
    comparison = json.loads(cur_json.read_text())["comparison"]
    ndcg = comparison["metrics"]["ndcg@10"]
    assert comparison["baseline"] == "base" and comparison["n_common"] == 40
    assert ndcg["delta"] == pytest.approx(0.1) and ndcg["p_value"] < 0.01
    assert comparison["metrics"]["mrr@10"]["p_value"] == 1.0  # unchanged metric
    page = cur_html.read_text()
    assert "Against baseline base" in page and "<svg class='deltas'" in page


def test_compare_uses_only_shared_queries() -> None:
    cur = build_run_record("c", {}, {"a": {"m": 1.0}, "b": {"m": 1.0}}, n_resamples=100)
    base = build_run_record("b", {}, {"b": {"m": 0.0}, "z": {"m": 0.0}}, n_resamples=100)
    comparison = compare_runs(cur, base, n_resamples=100)
    assert (comparison["n_common"], comparison["only_current"], comparison["only_baseline"]) == (1, 1, 1)
    assert comparison["per_query_delta"] == {"m": {"b": 1.0}}
    with pytest.raises(ValueError, match="share no query"):
        compare_runs(cur, build_run_record("x", {}, {"y": {"m": 0.0}}, n_resamples=10))


def test_compare_keeps_a_metric_scored_on_a_subset() -> None:
    # retrieval on every query, answers on the first two only (as `tune --report-answers` does)
    cur = {"a": {"r": 1.0, "acc": 1.0}, "b": {"r": 1.0, "acc": 1.0}, "c": {"r": 1.0}}
    base = {"a": {"r": 0.0, "acc": 0.0}, "b": {"r": 0.0, "acc": 1.0}, "c": {"r": 0.0}}
    comparison = compare_runs(
        build_run_record("c", {}, cur, n_resamples=50), build_run_record("b", {}, base, n_resamples=50),
        n_resamples=50,
    )  # fmt: skip
    assert comparison["metrics"]["r"]["n"] == 3 and comparison["metrics"]["acc"]["n"] == 2
    assert comparison["metrics"]["acc"]["delta"] == pytest.approx(0.5)
    assert comparison["per_query_delta"]["acc"] == {"a": 1.0, "b": 0.0}


def test_bad_inputs_fail_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        write_report(tmp_path, "../escape", {}, _per_query(0.0))
    with pytest.raises(ValueError, match="per_query is empty"):
        build_run_record("r", {}, {})
    (tmp_path / "not-a-run.json").write_text('{"metrics": {}}')
    with pytest.raises(ValueError, match=r"missing \['n', 'ci95', 'per_query'\]"):
        load_run(tmp_path / "not-a-run.json")
