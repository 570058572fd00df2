"""`ragsys tune`: the split, the keep/revert rule, resume, and the test split kept out."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, EvalSetReader, save_eval_set
from ragsys.eval.split import split_train_dev
from ragsys.index.build import index_paths
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.decide import decide, decide_labels
from ragsys.tune.run import tune
from ragsys.tune.settings import TuneSettings
from ragsys.tune.state import TuneState, load_state
from tests.corpus import write_corpus

LABELS = ["yes"] * 30 + ["no"] * 20 + ["maybe"] * 10


def _items(n_train: int = 60, n_test: int = 10) -> list[EvalItem]:
    train = [
        EvalItem(id=f"t{i:03d}", question=f"q{i}", split="train", label=LABELS[i % 60])
        for i in range(n_train)
    ]
    test = [
        EvalItem(id=f"x{i:03d}", question=f"x{i}", split="test", gold_doc_ids=("d",)) for i in range(n_test)
    ]
    return train + test


def test_split_is_seeded_stratified_and_order_independent() -> None:
    items = [it for it in _items() if it.split == "train"]
    a = split_train_dev(items, 0.2, seed=1)
    b = split_train_dev(list(reversed(items)), 0.2, seed=1)
    assert {it.id for it in a.dev} == {it.id for it in b.dev}
    assert len(a.dev) == 12 and len(a.train) == 48
    assert sorted(it.label or "" for it in a.dev).count("yes") == 6  # half of dev, as in the whole set
    assert {it.id for it in split_train_dev(items, 0.2, seed=2).dev} != {it.id for it in a.dev}
    assert not {it.id for it in a.dev} & {it.id for it in a.train}


def test_decide_keeps_only_a_shown_improvement() -> None:
    ids = [f"q{i}" for i in range(40)]
    before = {q: 0.5 for q in ids}
    better = {q: 0.5 + (0.2 if i % 4 else 0.0) for i, q in enumerate(ids)}
    assert decide(before, better).kept
    worse = {q: 0.4 for q in ids}
    assert not decide(before, worse).kept and "did not improve" in decide(before, worse).reason
    noisy = {q: 0.5 + (0.3 if i == 0 else 0.0) for i, q in enumerate(ids)}  # one lucky question
    d = decide(before, noisy)
    assert d.delta > 0 and not d.kept and "not shown" in d.reason
    assert not decide(before, before).kept


def _collapse_case() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """gold 60 yes / 20 no / 10 maybe; `before` gets every no and maybe right but only 10 yes
    (the rest "maybe"); `after` answers "yes" to everything: accuracy 0.44 -> 0.67."""
    gold = {f"q{i:02d}": "yes" if i < 60 else "no" if i < 80 else "maybe" for i in range(90)}
    before = {q: (g if g != "yes" or i < 10 else "maybe") for i, (q, g) in enumerate(gold.items())}
    return gold, before, {q: "yes" for q in gold}


def test_closed_set_answers_are_judged_on_macro_f1_so_a_majority_collapse_is_reverted() -> None:
    gold, before, after = _collapse_case()
    correct = {q: float(before[q] == g) for q, g in gold.items()}
    collapsed = {q: float(after[q] == g) for q, g in gold.items()}
    assert decide(correct, collapsed).kept  # on accuracy the collapse looks like a shown gain
    d = decide_labels(before, after, gold)
    assert not d.kept and d.statistic == "macro_f1" and d.delta < 0
    assert d.before == pytest.approx((20 / 70 + 1.0 + 20 / 70) / 3) and d.after == pytest.approx(0.8 / 3)
    assert "accuracy 0.444 -> 0.667" in d.reason and "answers yes 90, no 0, maybe 0" in d.reason
    # a real gain is kept: the yes questions it missed are now right, the rest unchanged
    fixed = {q: (g if g == "yes" else before[q]) for q, g in gold.items()}
    kept = decide_labels(before, fixed, gold)
    assert kept.kept and kept.delta > 0 and kept.p_value < 0.01
    assert decide_labels(before, before, gold).p_value == 1.0 and not decide_labels(before, before, gold).kept
    with pytest.raises(ValueError, match="no dev question"):
        decide_labels({}, after, gold)


class FakeScorer:
    """Scores a candidate by its pipeline name: the metric the stages are judged on."""

    LEVEL = {"base": 0.5, "good": 0.8, "bad": 0.3, "good2": 0.9}

    def __init__(self) -> None:
        self.calls: list[str] = []

    def score(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> dict[str, float]:
        self.calls.append(config.name)
        level = self.LEVEL[config.name]
        return {it.id: level + (0.05 if i % 2 else -0.05) for i, it in enumerate(items)}

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        return self.score(config, index_dir, items, metric), {}

    def index(self, path: Path) -> None:
        raise AssertionError("fake stages open no index")

    def close(self) -> None:
        pass


class CollapseScorer(FakeScorer):
    """Closed-set answers: "base" gets most yes questions wrong, "collapsed" answers yes to all."""

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        self.calls.append(config.name)
        labels = {}
        for i, it in enumerate(items):
            wrong_yes = it.label == "yes" and i % 3 != 0
            labels[it.id] = (
                "yes" if config.name == "collapsed" else ("maybe" if wrong_yes else it.label or "")
            )
        gold = {it.id: it.label for it in items}
        return {q: float(a == gold[q]) for q, a in labels.items()}, labels


def test_tune_judges_a_closed_set_generator_stage_on_macro_f1(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    reader, config = _setup(tmp_path, tiny_pipeline)
    settings = TuneSettings(stages=("generator",), isolated=False)
    state = tune(
        config, tmp_path / "index", reader, tmp_path / "out", settings=settings,
        stages={"generator": _named("collapsed")}, report=False, scorer=CollapseScorer(), log=lambda m: None,
    )  # type: ignore[arg-type]  # fmt: skip
    (rec,) = state.stages
    assert rec.status == "reverted" and rec.decision is not None and rec.decision.statistic == "macro_f1"
    assert "macro-F1 did not improve" in rec.reason
    # the chosen labels are kept in the state with the scores (a resumed run judges the same way)
    assert {k.split("::")[-1] for k in state.labels} == {"answer"} and len(state.labels) == 2
    assert all(set(v) == set(state.scores[k]) for k, v in state.labels.items())


def _named(name: str, metric: str | None = "answer"):  # type: ignore[no-untyped-def]
    def stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        ctx.log(f"running {name}")
        return Proposal(config.model_copy(update={"name": name}), index_dir, metric)

    return stage


def _setup(tmp_path: Path, tiny_pipeline: PipelineConfig) -> tuple[EvalSetReader, PipelineConfig]:
    save_eval_set(_items(), tmp_path / "ev.jsonl")
    return EvalSetReader(tmp_path / "ev.jsonl"), tiny_pipeline.model_copy(update={"name": "base"})


def test_keep_revert_with_a_fake_metric_and_no_test_reads(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    reader, config = _setup(tmp_path, tiny_pipeline)
    stages = {
        "retriever": _named("good"),
        "reranker": _named("bad"),
        "mixture": lambda *a: "nothing to mix",
        "generator": _named("good2"),
    }
    settings = TuneSettings(stages=("retriever", "reranker", "mixture", "generator"), isolated=False)
    state = tune(
        config,
        tmp_path / "index",
        reader,
        tmp_path / "out",
        settings=settings,
        stages=stages,  # type: ignore[arg-type]
        report=False,
        scorer=FakeScorer(),
        log=lambda m: None,
    )  # type: ignore[arg-type]
    status = {r.name: r.status for r in state.stages}
    assert status == {"retriever": "kept", "reranker": "reverted", "mixture": "skipped", "generator": "kept"}
    assert PipelineConfig.load(tmp_path / "out").name == "good2"  # the final pipeline is saved into --out
    assert PipelineConfig.load(Path(state.current_pipeline)).name == "good2"
    # Tuning asked the reader for the non-test splits only: never the test split, never "everything".
    assert reader.requested_splits and all(s is not None and "test" not in s for s in reader.requested_splits)


def test_resume_after_an_interrupted_stage(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    reader, config = _setup(tmp_path, tiny_pipeline)
    runs: list[str] = []

    def crashing(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        runs.append("reranker")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the stage

    def counted(ctx: TuneContext, cfg: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
        runs.append("retriever")
        return Proposal(cfg.model_copy(update={"name": "good"}), index_dir, "answer")

    settings = TuneSettings(stages=("retriever", "reranker"), isolated=False)
    kwargs = {"settings": settings, "report": False, "log": lambda m: None}
    with pytest.raises(KeyboardInterrupt):
        tune(
            config,
            tmp_path / "index",
            reader,
            tmp_path / "out",
            stages={"retriever": counted, "reranker": crashing},
            scorer=FakeScorer(),
            **kwargs,
        )  # type: ignore[arg-type]
    saved = load_state(tmp_path / "out")
    assert saved is not None and [r.name for r in saved.stages] == ["retriever"]
    state = tune(
        config,
        tmp_path / "index",
        reader,
        tmp_path / "out",
        stages={"retriever": counted, "reranker": _named("good2")},
        scorer=FakeScorer(),
        **kwargs,
    )  # type: ignore[arg-type]
    assert runs == ["retriever", "reranker"]  # the finished stage did not run again
    assert [r.name for r in state.stages] == ["retriever", "reranker"] and state.train_ids == saved.train_ids
    with pytest.raises(ValueError, match="another eval set or seed"):
        tune(
            config,
            tmp_path / "index",
            reader,
            tmp_path / "out",
            seed=5,
            stages={},
            scorer=FakeScorer(),
            **kwargs,
        )  # type: ignore[arg-type]


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


def test_isolated_control_reuses_identical_reranker_data_and_gets_the_joint_minutes(
    tiny_pipeline: PipelineConfig,
) -> None:
    from ragsys.generate.hf import GeneratorConfig
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.isolated import _budgeted, _reranker_data_was_isolated
    from ragsys.tune.state import StageRecord, TuneState

    def state(retriever: str) -> TuneState:
        stages = (
            StageRecord(name="retriever", status=retriever, reason="", metric="retrieval",  # type: ignore[arg-type]
                        pipeline_dir="s/01", index_dir="s/01/index"),
            StageRecord(name="reranker", status="kept", reason="", metric="retrieval", minutes=7.0,
                        pipeline_dir="s/02", index_dir="base-index"),
        )  # fmt: skip
        return TuneState(
            seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline="base", base_index="base-index",
            current_pipeline="s/02", current_index="base-index", stages=stages,
        )  # fmt: skip

    gold = [EvalItem(id="a", question="q", split="train", gold_doc_ids=("d",))]
    answered = [gold[0].model_copy(update={"answer": "an answer"})]

    def ctx(train: list[EvalItem]) -> TuneContext:
        return TuneContext(
            settings=TuneSettings(), seed=0, train=train, dev=[], feedback=None, scorer=FakeScorer(),  # type: ignore[arg-type]
            budget=TimeBudget(0.0), progress=lambda *a: None, log=lambda m: None,
        )  # fmt: skip

    with_gen = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    # reranker trained on the untuned retrieval with gold data only: the control is the same run
    assert _reranker_data_was_isolated(ctx(gold), state("reverted"), with_gen)
    assert _reranker_data_was_isolated(
        ctx(answered), state("reverted"), tiny_pipeline
    )  # no LM, no LM targets
    # its candidates came from a tuned retriever, or it had LM-supervised targets: retrain the control
    assert not _reranker_data_was_isolated(ctx(gold), state("kept"), with_gen)
    assert not _reranker_data_was_isolated(ctx(answered), state("reverted"), with_gen)
    synthetic = ctx(gold)
    synthetic.synthetic.append(("a question", None))  # type: ignore[arg-type]
    assert not _reranker_data_was_isolated(synthetic, state("reverted"), with_gen)
    # the run's budget is spent, yet the control trains as long as the joint stage took
    spent = ctx(gold)
    assert spent.budget.expired
    control = _budgeted(spent, state("reverted").stages[1])
    assert not control.budget.expired and 6.9 < (control.minutes_left() or 0) <= 7.0


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

    reader, config = _setup(tmp_path, tiny_pipeline)
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


def test_log_lines_once_a_minute_per_phase_and_at_the_end() -> None:
    from ragsys.cli.console import LineThrottle

    throttle = LineThrottle()
    assert throttle.due("mining", 1, 10)
    assert not throttle.due("mining", 2, 10)  # within the minute
    assert throttle.due("training", 1, 5)  # each phase has its own minute
    assert throttle.due("mining", 10, 10)  # the last one always shows
    assert LineThrottle(every_s=0.0).due("x", 1, 2)


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


class PassagesScorer(FakeScorer):
    """Answers improve with the passages the generator reads, up to `best`; closed-set labels."""

    def __init__(self, best: int) -> None:
        super().__init__()
        self.best = best
        self.asked: list[int | None] = []

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[dict[str, float], dict[str, str]]:
        k = config.generator.passages if config.generator is not None else None
        self.asked.append(k)
        right = {it.id: i % 6 < 6 - abs((k or 3) - self.best) for i, it in enumerate(items)}
        labels = {it.id: (it.label or "") if right[it.id] else "maybe" for it in items}
        return {q: float(r) for q, r in right.items()}, labels


def test_context_stage_chooses_the_passages_on_train_answers(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    from ragsys.generate.hf import GeneratorConfig
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.answer_stages import context_stage
    from ragsys.tune.report import without_stage
    from ragsys.tune.state import StageRecord, TuneState

    train = [it for it in _items() if it.split == "train"]
    with_gen = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    logs: list[str] = []

    def ctx(best: int) -> TuneContext:
        return TuneContext(
            settings=TuneSettings(context_questions=12), seed=0, train=train, dev=[], feedback=None,
            scorer=PassagesScorer(best), budget=TimeBudget(None), progress=lambda *a: None, log=logs.append,  # type: ignore[arg-type]
        )  # fmt: skip

    c = ctx(5)
    proposal = context_stage(c, with_gen, Path("idx"), Path("out"))
    assert isinstance(proposal, Proposal) and proposal.metric == "answer"
    assert proposal.config.generator is not None and proposal.config.generator.passages == 5
    assert proposal.extra["chosen"] == 5 and set(proposal.extra["tried"]) == {"1", "3", "5"}
    assert sorted(c.scorer.asked) == [1, 3, 5] and proposal.extra["questions"] == 12  # type: ignore[attr-defined]
    assert any("5 passages ->" in m for m in logs)
    # the current setting (the run's answer_k, 3) winning is not a change: nothing to judge
    assert "current setting" in str(context_stage(ctx(3), with_gen, Path("idx"), Path("out")))
    assert context_stage(ctx(5), tiny_pipeline, Path("idx"), Path("out")) == "the pipeline has no generator"

    # the ablation removes the choice alone: the generator (and its adapter) stay as tuned
    tuned = proposal.config.model_copy(
        update={"generator": proposal.config.generator.model_copy(update={"adapter": "lora"})}
    )
    base_dir, stage_dir = tmp_path / "base", tmp_path / "context"
    with_gen.save(base_dir)
    tuned.save(stage_dir)
    rec = StageRecord(name="context", status="kept", reason="", metric="answer",
                      pipeline_dir=str(stage_dir), index_dir="idx")  # fmt: skip
    state = TuneState(
        seed=0, eval_set="e", train_ids=(), dev_ids=(), base_pipeline=str(base_dir), base_index="idx",
        current_pipeline=str(stage_dir), current_index="idx", stages=(rec,),
    )  # fmt: skip
    removed = without_stage(state, rec).config.generator
    assert removed is not None and removed.passages is None and removed.adapter == "lora"
