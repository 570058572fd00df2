"""The end of `ragsys tune`: the only place the test split is read.

Systems scored on test: the baseline (the pipeline tune started from), the tuned one, the
tuned one with each kept stage removed in turn (that stage's component put back as it was
before the stage), and -- when built -- the same components tuned in isolation. Every
comparison is paired on the same test questions: delta, bootstrap CI and randomization p.
Writes `report.json` and a self-contained `report.html` into the tune output folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.report import build_run_record, compare_runs
from ragsys.eval.split import TEST_SPLIT
from ragsys.pipeline import PipelineConfig
from ragsys.train.parallel import current_world
from ragsys.tune.report_html import render
from ragsys.tune.scoring import Scorer
from ragsys.tune.shared import on_main
from ragsys.tune.state import StageRecord, TuneState, kept_stages

# Which pipeline fields each stage changes; removing a stage puts these back.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "scope": ("scoping",),
    "retriever": ("retrievers",),
    "reranker": ("reranker",),
    "mixture": ("fusion",),
    "context": ("generator",),  # only its `passages` (see `without_stage`)
    "labels": ("generator",),  # only its `label_bias`
    "generator": ("generator",),
    "preference": ("generator",),
}
# stages that set one field of the generator: removing one restores that field alone
KEPT_FIELD = {"context": "passages", "labels": "label_bias"}


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
    if rec.name in KEPT_FIELD and final.generator is not None and before.generator is not None:
        field = KEPT_FIELD[rec.name]
        update = {"generator": final.generator.model_copy(update={field: getattr(before.generator, field)})}
    index = Path(before_index) if rec.name == "retriever" else Path(state.current_index)
    note = "later stages built on it stay" if rec.name != "generator" else "removes preference tuning too"
    return System(f"tuned - {rec.name}", final.model_copy(update=update), index, note)


def systems_for(state: TuneState, isolated: System | None) -> list[System]:
    systems = [
        System("baseline", PipelineConfig.load(Path(state.base_pipeline)), Path(state.base_index)),
        System("tuned (joint)", PipelineConfig.load(Path(state.current_pipeline)), Path(state.current_index)),
    ]
    systems += [without_stage(state, rec) for rec in kept_stages(state.stages) if rec.name in STAGE_FIELDS]
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
        # every answer metric under the name `ragsys eval` gives it (numeric_match,
        # no_citation_rate, citation_precision, token_f1, label_accuracy, ...)
        metrics, labels = scorer.answer_metrics(system.config, system.index_dir, chosen)
        for q, m in metrics.items():
            per_query.setdefault(q, {}).update(m)
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
    """`score_system`, through the saved scores; True when they were read back. Under
    `accelerate launch` main alone looks, scores (the scorer shares it) and writes."""
    path = _saved_scores_path(out, system, test, answers)
    if on_main(current_world(), path.exists):  # every process takes the same branch
        raw = json.loads(path.read_text(encoding="utf-8"))
        return SystemScores(raw["per_query"], raw["labels"]), True
    result = score_system(scorer, system, test, answers)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"system": system.name, **result._asdict()}), encoding="utf-8")
        tmp.replace(path)

    on_main(current_world(), write)
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
    records, labels = _score_systems(
        systems_for(state, isolated), scorer, test, answers, out, state.seed, log
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
    block = _label_macro_f1(labels, records, test, isolated, state.seed)
    if block is not None:
        report["label_macro_f1"] = block

    def write() -> None:
        (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        (out / "report.html").write_text(render(report), encoding="utf-8")

    on_main(current_world(), write)
    return report


def _score_systems(
    systems: Sequence[System], scorer: Scorer, test: Sequence[EvalItem], answers: int | None, out: Path,
    seed: int, log: Callable[[str], None],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:  # fmt: skip
    """Each system's run record and chosen labels. Two systems with the same components (e.g. an
    isolated control that reused the joint run's reranker) are one system: scored once. The
    pipeline's name changes nothing."""
    records: dict[str, dict[str, Any]] = {}
    labels: dict[str, dict[str, str]] = {}
    scored: dict[tuple[str, str], SystemScores] = {}
    for system in systems:
        key = (system.config.identity(), str(system.index_dir))
        if key in scored:
            log(f"{system.name}: the same components as a system already scored; its scores reused")
        else:
            log(f"scoring {system.name} on {len(test)} test questions")
            scored[key], saved = scored_system(scorer, system, test, answers, out)
            if saved:
                log(f"{system.name}: test scores read back from {out / 'report-scores'}")
        labels[system.name] = scored[key].labels
        records[system.name] = build_run_record(
            system.name, {"note": system.note}, scored[key].per_query, seed=seed
        )
    return records, labels


def _label_macro_f1(
    labels: dict[str, dict[str, str]], records: dict[str, Any], test: Sequence[EvalItem],
    isolated: System | None, seed: int,
) -> dict[str, Any] | None:  # fmt: skip
    """Macro-F1 is not a mean over questions, so it is not in the per-query comparisons: each
    system's value with a bootstrap CI, and paired bootstrap deltas against "tuned"."""
    gold = {it.id: it.label for it in test if it.label}
    table = macro_f1_table(labels, gold, seed)
    if not table:
        return None
    pairs = {"baseline": "tuned_vs_baseline", **{n: n for n in records if n.startswith("tuned - ")}}
    if isolated is not None:
        pairs[isolated.name] = "joint_vs_isolated"
    deltas = {
        report_key: macro_f1_delta(labels["tuned (joint)"], labels[name], gold, seed)
        for name, report_key in pairs.items()
    }
    return {"systems": table, "deltas_vs_tuned": deltas}


def _slim(comparison: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comparison.items() if k != "per_query_delta"}
