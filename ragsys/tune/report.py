"""The end of `ragsys tune`: the only place the test split is read.

Systems scored on test: the baseline (the pipeline tune started from), the tuned one, the
tuned one with each kept stage removed in turn (that stage's component put back as it was
before the stage), and -- when built -- the same components tuned in isolation. Every
comparison is paired on the same test questions: delta, bootstrap CI and randomization p.
Writes `report.json` and a self-contained `report.html` into the tune output folder.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.report import build_run_record, compare_runs
from ragsys.eval.split import TEST_SPLIT
from ragsys.pipeline import PipelineConfig
from ragsys.tune.scoring import Scorer
from ragsys.tune.state import StageRecord, TuneState

# Which pipeline fields each stage changes; removing a stage puts these back.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "retriever": ("retrievers",),
    "reranker": ("reranker",),
    "mixture": ("fusion",),
    "context": ("generator",),  # only its `passages` (see `without_stage`)
    "generator": ("generator",),
    "preference": ("generator",),
}


class System:
    def __init__(self, name: str, config: PipelineConfig, index_dir: Path, note: str = "") -> None:
        self.name, self.config, self.index_dir, self.note = name, config, index_dir, note


def stage_inputs(state: TuneState) -> dict[str, tuple[str, str]]:
    """For each kept stage, the (pipeline dir, index dir) it started from."""
    cur = (state.base_pipeline, state.base_index)
    out: dict[str, tuple[str, str]] = {}
    for rec in state.stages:
        out[rec.name] = cur
        if rec.status == "kept" and rec.metric is not None and rec.pipeline_dir and rec.index_dir:
            cur = (rec.pipeline_dir, rec.index_dir)
    return out


def without_stage(state: TuneState, rec: StageRecord) -> System:
    """The tuned system with `rec`'s component reverted to what it was before that stage."""
    final = PipelineConfig.load(Path(state.current_pipeline))
    before_dir, before_index = stage_inputs(state)[rec.name]
    before = PipelineConfig.load(Path(before_dir))
    update = {f: getattr(before, f) for f in STAGE_FIELDS[rec.name]}
    if rec.name == "context" and final.generator is not None and before.generator is not None:
        update = {"generator": final.generator.model_copy(update={"passages": before.generator.passages})}
    index = Path(before_index) if rec.name == "retriever" else Path(state.current_index)
    note = "later stages built on it stay" if rec.name != "generator" else "removes preference tuning too"
    return System(f"tuned - {rec.name}", final.model_copy(update=update), index, note)


def systems_for(state: TuneState, isolated: System | None) -> list[System]:
    systems = [
        System("baseline", PipelineConfig.load(Path(state.base_pipeline)), Path(state.base_index)),
        System("tuned (joint)", PipelineConfig.load(Path(state.current_pipeline)), Path(state.current_index)),
    ]
    for rec in state.stages:
        if rec.status == "kept" and rec.metric is not None and rec.name in STAGE_FIELDS:
            systems.append(without_stage(state, rec))
    if isolated is not None:
        systems.append(isolated)
    return systems


class SystemScores(NamedTuple):
    per_query: dict[str, dict[str, float]]  # qid -> metric -> value
    labels: dict[str, str]  # qid -> the label the answer chose (closed-set questions only)


def score_system(
    scorer: Scorer, system: System, test: Sequence[EvalItem], answers: int | None
) -> SystemScores:
    """Retrieval metrics on test, and answer metrics (plus chosen labels) with a generator."""
    from ragsys.eval.retrieval import score_retrieval, search_all

    per_query: dict[str, dict[str, float]] = {}
    labels: dict[str, str] = {}
    gold = [it for it in test if it.gold_doc_ids]
    if gold:
        search = scorer.search(system.config, system.index_dir, generate=False)
        _, retrieval = score_retrieval(gold, search_all(search, [it.question for it in gold]))
        for q, m in retrieval.items():
            per_query.setdefault(q, {}).update(m)
    referenced = [it for it in test if it.answer or it.label]
    if system.config.generator is not None and referenced and answers != 0:
        chosen = referenced[:answers] if answers else referenced
        label = all(it.label for it in chosen)
        metric = "label_accuracy" if label else "token_f1"
        scores, labels = scorer.answers_and_labels(system.config, system.index_dir, chosen)
        for q, v in scores.items():
            per_query.setdefault(q, {})[metric] = v
    return SystemScores(per_query, labels)


def _saved_scores_path(out: Path, system: System, test: Sequence[EvalItem], answers: int | None) -> Path:
    """Where a system's test scores are kept, named by what determines them: its components
    (weights by content), the index, the test questions and how many were answered. Scoring
    answers takes minutes per system, so a report interrupted, or re-run to add the isolated
    control, scores only what it has not scored before."""
    index = system.index_dir.resolve()
    manifest = index / "manifest.json"
    what = json.dumps(
        [system.config.identity(), str(index), manifest.stat().st_mtime_ns if manifest.exists() else None,
         [it.id for it in test], answers]
    )  # fmt: skip
    return out / "report-scores" / f"{hashlib.sha256(what.encode()).hexdigest()[:20]}.json"


def scored_system(
    scorer: Scorer, system: System, test: Sequence[EvalItem], answers: int | None, out: Path
) -> tuple[SystemScores, bool]:
    """`score_system`, through the saved scores; True when they were read back."""
    path = _saved_scores_path(out, system, test, answers)
    if path.exists():
        raw = json.loads(path.read_text(encoding="utf-8"))
        return SystemScores(raw["per_query"], raw["labels"]), True
    result = score_system(scorer, system, test, answers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"system": system.name, **result._asdict()}), encoding="utf-8")
    tmp.replace(path)
    return result, False


def macro_f1_table(
    labels: dict[str, dict[str, str]], gold: dict[str, str], seed: int
) -> dict[str, dict[str, Any]]:
    """Per system: macro-F1 over its answered questions, a bootstrap CI and its label counts."""
    from ragsys.eval.answers import LABELS, label_accuracy_and_macro_f1
    from ragsys.eval.stats import bootstrap_macro_f1

    table: dict[str, dict[str, Any]] = {}
    for name, chosen in labels.items():
        qids = [q for q in chosen if q in gold]
        if not qids:
            continue
        preds, golds = [chosen[q] for q in qids], [gold[q] for q in qids]
        _, macro = label_accuracy_and_macro_f1(preds, golds, LABELS)
        lo, hi = bootstrap_macro_f1(preds, golds, seed=seed)
        table[name] = {"value": macro, "ci95": [lo, hi], "n": len(qids),
                       "counts": {lab: preds.count(lab) for lab in LABELS}}  # fmt: skip
    return table


def macro_f1_delta(
    current: dict[str, str], baseline: dict[str, str], gold: dict[str, str], seed: int
) -> dict[str, Any] | None:
    """Paired bootstrap of macro-F1(current) - macro-F1(baseline) on the questions both answered."""
    from ragsys.eval.stats import paired_macro_f1_delta

    qids = [q for q in current if q in baseline and q in gold]
    if not qids:
        return None
    delta, lo, hi = paired_macro_f1_delta(
        [current[q] for q in qids], [baseline[q] for q in qids], [gold[q] for q in qids], seed=seed
    )
    return {"n": len(qids), "delta": delta, "ci95": [lo, hi]}


def final_report(
    state: TuneState,
    reader: EvalSetReader,
    out: Path,
    scorer: Scorer,
    isolated: System | None,
    answers: int | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    test = reader.read([TEST_SPLIT])
    systems = systems_for(state, isolated)
    records: dict[str, dict[str, Any]] = {}
    labels: dict[str, dict[str, str]] = {}
    scored: dict[tuple[str, str], SystemScores] = {}
    for system in systems:
        # Two systems with the same components (e.g. an isolated control that reused the joint
        # run's reranker) are one system: scored once. The pipeline's name changes nothing.
        key = (system.config.identity(), str(system.index_dir))
        if key in scored:
            log(f"{system.name}: the same components as a system already scored; its scores reused")
        else:
            log(f"scoring {system.name} on {len(test)} test questions")
            scored[key], saved = scored_system(scorer, system, test, answers, out)
            if saved:
                log(f"{system.name}: test scores read back from {out / 'report-scores'}")
        per_query = scored[key].per_query
        labels[system.name] = scored[key].labels
        records[system.name] = build_run_record(
            system.name, {"note": system.note}, per_query, seed=state.seed
        )
    tuned, base = records["tuned (joint)"], records["baseline"]
    report: dict[str, Any] = {
        "test_questions": len(test),
        "dev_questions": len(state.dev_ids),
        "train_questions": len(state.train_ids),
        "minutes": round(state.minutes, 1),
        "stages": [s.model_dump(mode="json") for s in state.stages],
        "systems": {
            n: {"metrics": r["metrics"], "ci95": r["ci95"], "n": r["n"], "note": r.get("note", "")}
            for n, r in records.items()
        },
        "tuned_vs_baseline": _slim(compare_runs(tuned, base)),
        "ablation": {
            n: _slim(compare_runs(tuned, r)) for n, r in records.items() if n.startswith("tuned - ")
        },
        "pipeline": str(out),
        "index": state.current_index,
    }
    if isolated is not None:
        report["joint_vs_isolated"] = _slim(compare_runs(tuned, records[isolated.name]))
    gold = {it.id: it.label for it in test if it.label}
    table = macro_f1_table(labels, gold, state.seed)
    if table:
        # Macro-F1 is not a mean over questions, so it is not in the per-query comparisons above:
        # each system's value with a bootstrap CI, and paired bootstrap deltas against "tuned".
        pairs = {"baseline": "tuned_vs_baseline", **{n: n for n in records if n.startswith("tuned - ")}}
        if isolated is not None:
            pairs[isolated.name] = "joint_vs_isolated"
        deltas = {
            report_key: macro_f1_delta(labels["tuned (joint)"], labels[name], gold, state.seed)
            for name, report_key in pairs.items()
        }
        report["label_macro_f1"] = {"systems": table, "deltas_vs_tuned": deltas}
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.html").write_text(render(report), encoding="utf-8")
    return report


def _slim(comparison: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comparison.items() if k != "per_query_delta"}


# --- HTML ---------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.kept{color:#060}.reverted{color:#a00}.skipped{color:#777}"
)


def render(report: dict[str, Any]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ragsys tune</title><style>{_CSS}</style>"
        "</head><body><h1>ragsys tune report</h1>",
        f"<p>train {report['train_questions']} / dev {report['dev_questions']} questions for tuning; "
        f"{report['test_questions']} test questions scored only here. {report['minutes']} min of tuning. "
        "CIs: percentile bootstrap; p: paired randomization test.</p>",
        _stages_table(report["stages"]),
        _systems_table(report["systems"]),
        _bars(report["systems"]),
        _comparison_table("Tuned vs baseline", {"tuned vs baseline": report["tuned_vs_baseline"]}),
        _comparison_table("Ablation: tuned minus each stage (delta = tuned - ablated)", report["ablation"]),
    ]
    if "joint_vs_isolated" in report:
        parts.append(
            _comparison_table(
                "Joint vs isolated (delta = joint - isolated)",
                {"joint vs isolated": report["joint_vs_isolated"]},
            )
        )
    if "label_macro_f1" in report:
        parts.append(_macro_f1_html(report["label_macro_f1"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _macro_f1_html(block: dict[str, Any]) -> str:
    def ci(lo: float, hi: float, sign: str = "") -> str:
        return f"[{lo:{sign}.3f}, {hi:{sign}.3f}]"

    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{t['value']:.4f}</td><td>{ci(*t['ci95'])}</td><td>{t['n']}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v}' for k, v in t['counts'].items()))}</td></tr>"
        for n, t in block["systems"].items()
    )
    deltas = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{d['delta']:+.4f}</td>"
        f"<td>{ci(d['ci95'][0], d['ci95'][1], '+')}</td><td>{d['n']}</td></tr>"
        for k, d in block["deltas_vs_tuned"].items()
        if d is not None
    )
    head = "<tr><th>system</th><th>macro-F1</th><th>95% CI</th><th>n</th><th>labels chosen</th></tr>"
    return (
        "<h2>Label macro-F1 (test; paired bootstrap for deltas = tuned - other)</h2>"
        f"<table>{head}{rows}</table>"
        f"<table><tr><th>comparison</th><th>delta</th><th>95% CI</th><th>n</th></tr>{deltas}</table>"
    )


def _stages_table(stages: Sequence[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s['name'])}</td><td class='{s['status']}'>{s['status']}</td>"
        f"<td>{html.escape(s['reason'])}</td><td>{s['minutes']:.1f}</td></tr>"
        for s in stages
    )
    head = "<tr><th>stage</th><th>status</th><th>why</th><th>min</th></tr>"
    return f"<h2>Stages (dev)</h2><table>{head}{rows}</table>"


def _systems_table(systems: dict[str, dict[str, Any]]) -> str:
    metrics = sorted({m for s in systems.values() for m in s["metrics"]})
    head = "<tr><th>system</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in metrics) + "</tr>"
    rows = ""
    for name, s in systems.items():
        cells = "".join(
            f"<td>{s['metrics'][m]:.4f}<br><small>[{s['ci95'][m][0]:.3f}, {s['ci95'][m][1]:.3f}]</small></td>"
            if m in s["metrics"] and m in s["ci95"]
            else "<td>&mdash;</td>"
            for m in metrics
        )
        rows += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    return f"<h2>Test</h2><table>{head}{rows}</table>"


def _comparison_table(title: str, comparisons: dict[str, dict[str, Any]]) -> str:
    if not comparisons:
        return f"<h2>{html.escape(title)}</h2><p>no kept stage to remove</p>"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(m)}</td><td>{c['delta']:+.4f}</td>"
        f"<td>[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]</td><td>{c['p_value']:.4f}</td></tr>"
        for name, comp in comparisons.items()
        for m, c in comp["metrics"].items()
    )
    head = "<tr><th>comparison</th><th>metric</th><th>delta</th><th>95% CI</th><th>p</th></tr>"
    return f"<h2>{html.escape(title)}</h2><table>{head}{rows}</table>"


def _bars(systems: dict[str, dict[str, Any]], w: int = 720) -> str:
    """One bar per system for the primary metric (nDCG@10, else the answer metric), CI whiskers."""
    first = next(iter(systems.values()))["metrics"]
    metric = "ndcg@10" if "ndcg@10" in first else next(iter(first), None)
    if metric is None:
        return ""
    names = [n for n, s in systems.items() if metric in s["metrics"]]
    row_h, left = 26, 200
    h = row_h * len(names) + 30
    top = max([1e-9, *(systems[n]["ci95"][metric][1] for n in names)])
    scale = (w - left - 60) / top
    body = []
    for i, n in enumerate(names):
        m, (lo, hi) = systems[n]["metrics"][metric], systems[n]["ci95"][metric]
        y = 10 + i * row_h
        body.append(
            f"<text x='{left - 6}' y='{y + 15}' text-anchor='end' font-size='12'>{html.escape(n)}</text>"
            f"<rect x='{left}' y='{y + 3}' width='{m * scale:.1f}' height='16' fill='#5b8def'/>"
            f"<line x1='{left + lo * scale:.1f}' x2='{left + hi * scale:.1f}' y1='{y + 11}' y2='{y + 11}' "
            f"stroke='#222'/><text x='{left + hi * scale + 4:.1f}' y='{y + 15}' font-size='11'>{m:.3f}</text>"
        )
    return f"<h2>{html.escape(metric)} by system</h2><svg width='{w}' height='{h}'>{''.join(body)}</svg>"
