"""The context stage: how many passages the generator reads, chosen on train answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.settings import TuneSettings
from tests.fixtures.tune import FakeScorer, tune_items


class IndexlessScorer(FakeScorer):
    """A scorer whose index is never opened: the stages under test only pass it on."""

    def index(self, path: Path) -> None:
        return None


def free_text_items(n: int) -> list[EvalItem]:
    """The first `n` tune items with a free-text reference instead of a label."""
    return [it.model_copy(update={"label": None, "answer": f"answer {it.id}"}) for it in tune_items()[:n]]


def with_generator(config: PipelineConfig) -> PipelineConfig:
    """`config` with a generator (never loaded: the tests replace its training)."""
    from ragsys.generate.config import GeneratorConfig

    return config.model_copy(update={"generator": GeneratorConfig(model="m")})


def preference_context(
    mp: Any, fake_train: Any, train: list[EvalItem], budget: Any, log: Any = lambda m: None
) -> TuneContext:
    """A tune context for `preference_stage` with `train_generator` replaced by `fake_train`."""
    from ragsys.tune import answer_stages

    mp.setattr(answer_stages, "train_generator", fake_train)
    mp.setattr(answer_stages, "ready_generator", lambda config, out: config)
    return TuneContext(
        settings=TuneSettings(), seed=0, train=train, dev=[], feedback=None,
        scorer=IndexlessScorer(), budget=budget, progress=lambda *a: None, log=log,  # type: ignore[arg-type]
    )  # fmt: skip


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
    from ragsys.train.budget import TimeBudget
    from ragsys.tune.answer_stages import context_stage
    from ragsys.tune.report import without_stage
    from ragsys.tune.state import StageRecord, TuneState

    train = [it for it in tune_items() if it.split == "train"]
    with_gen = with_generator(tiny_pipeline)
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


def test_the_generator_stage_calibrates_labels_on_questions_sft_never_saw(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: object
) -> None:
    import pytest

    from ragsys.train.budget import TimeBudget
    from ragsys.tune import answer_stages

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    train = [it for it in tune_items() if it.split == "train"]  # 60 closed-set questions
    with_gen = with_generator(tiny_pipeline)
    given: dict[str, list[str]] = {}

    class Result:
        pipeline = with_gen.model_copy(update={"name": "sft"})

        def model_dump(self, **kwargs: object) -> dict[str, object]:
            return {"steps": 1}

    def fake_sft(config: PipelineConfig, settings: object, *, items: list[EvalItem], **kw: object) -> Result:
        given["sft"] = [it.id for it in items]
        given["contexts"] = [settings.contexts]  # type: ignore[attr-defined]
        return Result()

    def fake_labels(
        config: PipelineConfig, settings: object, items: list[EvalItem], *, out: Path, **kw: object
    ) -> object:
        given["labels"] = [it.id for it in items]
        calibrated = config.generator.model_copy(update={"label_bias": (("yes", 0.0), ("no", -1.0))})  # type: ignore[union-attr]
        config.model_copy(update={"generator": calibrated}).save(out)

        class Done:
            def model_dump(self, **kwargs: object) -> dict[str, object]:
                return {"bias": [["no", -1.0]]}

        return Done()

    mp.setattr(answer_stages, "train_generator", fake_sft)
    mp.setattr(answer_stages, "train_labels", fake_labels)
    mp.setattr(answer_stages, "ready_generator", lambda config, out: config)

    ctx = TuneContext(
        settings=TuneSettings(label_calibration=15), seed=0, train=train, dev=[], feedback=None,
        scorer=IndexlessScorer(), budget=TimeBudget(None), progress=lambda *a: None, log=lambda m: None,  # type: ignore[arg-type]
    )  # fmt: skip
    proposal = answer_stages.generator_stage(ctx, with_gen, Path("idx"), tmp_path)
    assert isinstance(proposal, Proposal)
    assert len(given["labels"]) == 15 and len(given["sft"]) == 45
    assert not set(given["labels"]) & set(given["sft"])  # calibrated on questions SFT never saw
    assert proposal.config.generator is not None and proposal.config.generator.label_bias[1] == ("no", -1.0)
    assert proposal.extra["labels"] == {"bias": [["no", -1.0]]}
    # free-text references: nothing held out, nothing calibrated
    free = [it.model_copy(update={"label": None, "answer": "an answer"}) for it in train]
    given.clear()
    ctx.train = free
    answer_stages.generator_stage(ctx, with_gen, Path("idx"), tmp_path / "free")
    assert len(given["sft"]) == 60 and "labels" not in given
    assert given["contexts"] == ["retrieved"]  # the default: what inference sees
    evidence = TuneSettings().generator.model_copy(update={"contexts": "evidence"})
    ctx.settings = TuneSettings(generator=evidence)
    answer_stages.generator_stage(ctx, with_gen, Path("idx"), tmp_path / "evidence")
    assert given["contexts"] == ["evidence"]  # --sft-contexts evidence


def test_the_preference_stage_learns_from_own_mistakes_without_feedback(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: object
) -> None:
    import pytest

    from ragsys.train.budget import TimeBudget
    from ragsys.train.generator.feedback import NoPreferenceSignal
    from ragsys.tune import answer_stages

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    train = free_text_items(20)
    with_gen = with_generator(tiny_pipeline)
    calls: list[tuple[str, int, object]] = []

    class Result:
        def __init__(self, name: str) -> None:
            self.pipeline = with_gen.model_copy(update={"name": name})

        def model_dump(self, **kwargs: object) -> dict[str, object]:
            return {"steps": 1}

    def fake_train(
        config: PipelineConfig, settings: Any, *, items: list[EvalItem], feedback: object, **kw: object
    ) -> Result:
        calls.append((settings.method, len(items), feedback))
        if settings.method == "kto":
            raise NoPreferenceSignal("no training examples; check the eval set / feedback source")
        return Result(f"after-{settings.method}")

    logs: list[str] = []
    ctx = preference_context(mp, fake_train, train, TimeBudget(None), logs.append)
    proposal = answer_stages.preference_stage(ctx, with_gen, Path("idx"), tmp_path)
    assert calls == [("kto", 20, None), ("clair", 20, None)]  # the train references, no store needed
    assert isinstance(proposal, Proposal) and proposal.config.name == "after-clair"
    assert "no training examples" in proposal.extra["skipped"]["kto"] and any(
        "kto skipped" in m for m in logs
    )
    ctx.train = []
    assert "no train question" in str(answer_stages.preference_stage(ctx, with_gen, Path("idx"), tmp_path))


def test_answer_scores_are_figures_where_the_reference_has_them() -> None:
    from ragsys.tune.scoring import answer_score

    assert answer_score({"label_accuracy": 1.0, "token_f1": 0.2}, closed=True) == 1.0
    assert answer_score({"numeric_match": 0.0, "token_f1": 0.9}, closed=False) == 0.0  # fluent, wrong figure
    assert answer_score({"token_f1": 0.4}, closed=False) == 0.4
    assert answer_score({"numeric_match": 1.0, "no_citation_rate": 1.0}, closed=False) == 0.0  # uncheckable
    assert answer_score({"token_f1": 0.4, "no_citation_rate": 0.0}, closed=False) == 0.4
    # partial credit where the reference states figures: half of them right beats none
    assert answer_score({"numeric_match": 0.0, "figure_f1": 0.5, "token_f1": 0.9}, closed=False) == 0.5
    uncited = {"numeric_match": 0.0, "figure_f1": 0.5, "no_citation_rate": 1.0}
    assert answer_score(uncited, closed=False) == 0.0


def test_each_preference_method_gets_an_equal_share_of_what_is_left(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: object
) -> None:
    import pytest

    from ragsys.train.budget import TimeBudget
    from ragsys.tune import answer_stages

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    train = free_text_items(4)
    with_gen = with_generator(tiny_pipeline)
    now = [0.0]
    budgets: list[float] = []

    class Result:
        pipeline = with_gen

        def model_dump(self, **kwargs: object) -> dict[str, object]:
            return {}

    def fake_train(config: PipelineConfig, settings: Any, **kw: object) -> Result:
        budgets.append(settings.max_minutes)
        now[0] += 60.0 * settings.max_minutes  # each method spends all it was given
        return Result()

    ctx = preference_context(mp, fake_train, train, TimeBudget(30.0, clock=lambda: now[0]))
    answer_stages.preference_stage(ctx, with_gen, Path("idx"), tmp_path)
    assert budgets == pytest.approx([15.0, 15.0])  # KTO used to take all 30 and leave CLAIR nothing


def test_the_preference_stage_never_trains_on_feedback_about_the_questions_it_is_judged_on(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: object
) -> None:
    import pytest

    from ragsys.feedback.select import question_key
    from ragsys.train.budget import TimeBudget
    from ragsys.tune import answer_stages

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    items = free_text_items(12)
    with_gen = with_generator(tiny_pipeline)
    held: list[tuple[str, ...]] = []

    def fake_train(config: PipelineConfig, settings: Any, **kw: object) -> object:
        held.append(settings.feedback_held_out)
        raise answer_stages.NoPreferenceSignal("nothing")

    ctx = preference_context(mp, fake_train, items[:8], TimeBudget(None))
    ctx.dev, ctx.questions = items[8:10], items  # 10, 11: a held-out fold's questions
    answer_stages.preference_stage(ctx, with_gen, Path("idx"), tmp_path)
    assert held and all(h == tuple(sorted(question_key(it.question) for it in items[8:])) for h in held)


def test_sft_with_no_supported_target_is_skipped_with_its_reason(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: object
) -> None:
    """References stating figures no passage states give SFT no example: the stage says so and
    tune goes on (it exited 2: found by eval/feedback_loop.py --tiny --stages generator)."""
    import pytest

    from ragsys.train.budget import TimeBudget
    from ragsys.train.generator.data import NoTrainingExamples
    from ragsys.tune import answer_stages

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    train = [
        it.model_copy(update={"label": None, "answer": "Sales were $5 million."}) for it in tune_items()[:6]
    ]
    with_gen = with_generator(tiny_pipeline)

    def fake_train(config: PipelineConfig, settings: Any, **kw: object) -> object:
        raise NoTrainingExamples("no training examples ({'skipped_unsupported': 6})")

    ctx = preference_context(mp, fake_train, train, TimeBudget(None))
    reason = answer_stages.generator_stage(ctx, with_gen, Path("idx"), tmp_path)
    assert isinstance(reason, str) and "nothing to learn from" in reason and "skipped_unsupported" in reason
