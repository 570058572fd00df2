"""The answer stages of `ragsys tune`: how many passages the generator reads, the label step's
calibration alone, SFT of the generator, and preference tuning from the model's own mistakes
and feedback (KTO thumbs, CLAIR revisions).

On closed-set questions (every reference a yes/no/maybe label) the generator stage also
calibrates the label step (`ragsys.train.labels`): `label_calibration` train questions are
held out of SFT, answered by the fine-tuned generator, and the per-label offsets fitted on
them, so what the keep rule judges is the calibrated model and a collapse onto the majority
label cannot pass for a gain."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ragsys.eval.answers import LABELS, label_accuracy_and_macro_f1
from ragsys.eval.evalset import EvalItem
from ragsys.eval.split import carve_dev
from ragsys.pipeline import PipelineConfig
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.generator.data import NoTrainingExamples
from ragsys.train.generator.feedback import NoPreferenceSignal
from ragsys.train.generator.trainer import read_feedback, train_generator
from ragsys.train.labels import LabelTrainConfig, train_labels
from ragsys.train.merge import stack_on_adapter
from ragsys.tune.context import Proposal, TuneContext, with_reference
from ragsys.tune.decide import closed_set_gold
from ragsys.tune.scoring import ANSWER, passages_for
from ragsys.tune.shared import on_main


def context_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """How many retrieved passages the generator reads: each of `context_passages` answers the
    first `context_questions` train questions with a reference, and the best (label macro-F1 for
    yes/no/maybe sets, else the mean answer score; ties to fewer passages) is proposed. Chosen on
    train, so the keep rule's paired test on dev is not judging its own selection."""
    if config.generator is None:
        return "the pipeline has no generator"
    questions = with_reference(ctx.train)[: ctx.settings.context_questions]
    if not questions:
        return "no train question has a reference answer or label"
    current = passages_for(config, ctx.settings.answer_k)
    choices = sorted(set(ctx.settings.context_passages) | {current})
    tried: dict[int, float] = {}
    for k in choices:
        candidate = _with_passages(config, k)
        scores, labels = ctx.scorer.measure(candidate, index_dir, questions, ANSWER)
        gold = closed_set_gold(questions, labels)
        if gold is not None:
            ids = sorted(gold)
            tried[k] = label_accuracy_and_macro_f1([labels[i] for i in ids], [gold[i] for i in ids])[1]
        else:
            tried[k] = sum(scores.values()) / max(len(scores), 1)
        ctx.log(f"context: {k} passages -> {tried[k]:.4f} on {len(questions)} train questions")
    best = max(choices, key=lambda k: (round(tried[k], 10), -k))
    extra = {"tried": {str(k): v for k, v in tried.items()}, "questions": len(questions), "chosen": best}
    if best == current:
        return f"{current} passages (the current setting) scored best on train: {extra['tried']}"
    return Proposal(_with_passages(config, best), index_dir, ANSWER, extra)


def _with_passages(config: PipelineConfig, k: int) -> PipelineConfig:
    assert config.generator is not None
    return config.model_copy(update={"generator": config.generator.model_copy(update={"passages": k})})


def generator_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, contexts: str | None = None
) -> Proposal | str:
    """SFT on the train questions' references; `contexts` (default: the settings') says which
    passages it learns from."""
    if config.generator is None:
        return "the pipeline has no generator"
    answered = with_reference(ctx.train)
    if not answered:
        return "no train question has a reference answer or label"
    train = ctx.settings.generator.model_copy(
        update={
            "method": "sft",
            "seed": ctx.seed,
            "max_minutes": ctx.minutes_left(),
            "k": passages_for(config, ctx.settings.answer_k),
            "contexts": contexts or ctx.settings.generator.contexts,
        }
    )
    calibrate = _calibration_ids(answered, ctx.settings.label_calibration, ctx.seed)
    try:
        result = train_generator(
            on_main(ctx.world, lambda: ready_generator(config, out)),  # merged once
            train,
            index=ctx.scorer.index(index_dir),
            items=[it for it in answered if it.id not in calibrate],
            out=out / "train",
            progress=ctx.train_progress,
        )
    except NoTrainingExamples as e:  # e.g. no reference its passages support: nothing to imitate
        return f"SFT has nothing to learn from: {e}"
    extra = result.model_dump(mode="json", exclude={"pipeline"})
    if not calibrate:
        return Proposal(result.pipeline, index_dir, ANSWER, extra)
    labels = on_main(ctx.world, lambda: train_labels(  # answers and writes once
        result.pipeline,
        LabelTrainConfig(
            dev_fraction=0.0, limit=None, k=passages_for(config, ctx.settings.answer_k), seed=ctx.seed
        ),
        [it for it in answered if it.id in calibrate],
        index=ctx.scorer.index(index_dir),
        out=out / "labels",
        progress=lambda done, total: ctx.progress("label calibration", done, total),
    ))  # fmt: skip
    calibrated = PipelineConfig.load(out / "labels")
    return Proposal(calibrated, index_dir, ANSWER, {**extra, "labels": labels.model_dump(mode="json")})


def labels_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """The label step calibrated, no weight trained: per-option offsets fitted on the current
    pipeline's own answers to the closed-set train questions, to maximize their macro-F1
    (`ragsys.train.labels`). Minutes where SFT takes an hour; judged like any answer stage."""
    if config.generator is None:
        return "the pipeline has no generator"
    closed = [it for it in ctx.train if (it.label or "").strip().lower() in LABELS]
    if len(closed) < 2:
        return f"{len(closed)} train questions have a closed-set label ({'/'.join(LABELS)}): nothing to fit"
    limit = _answers_that_fit(ctx, ctx.settings.label_questions)
    if limit < 2:
        return f"the budget leaves time to answer {limit} train questions: too few to fit offsets on"
    k = passages_for(config, ctx.settings.answer_k)
    result = on_main(ctx.world, lambda: train_labels(  # answers and writes once
        config,
        LabelTrainConfig(dev_fraction=0.0, limit=limit, k=k, seed=ctx.seed),
        closed, index=ctx.scorer.index(index_dir), out=out / "labels",
        progress=lambda done, total: ctx.progress("label calibration", done, total),
    ))  # fmt: skip
    return Proposal(PipelineConfig.load(out / "labels"), index_dir, ANSWER, result.model_dump(mode="json"))


def _answers_that_fit(ctx: TuneContext, wanted: int) -> int:
    """How many of `wanted` answers fit the stage's budget once its dev judging (two candidates'
    answers) is paid for, at the seconds per answer the scorer measured; `wanted` when unknown."""
    per, left = on_main(ctx.world, lambda: ctx.scorer.seconds_per(ANSWER)), ctx.minutes_left()
    if not per or left is None:
        return wanted
    judging = 2 * min(ctx.settings.dev_answers, len(ctx.dev)) * per
    fits = max(int((left * 60.0 - judging) / per), 0)
    if fits < wanted:
        ctx.log(f"labels: {fits} of {wanted} train answers fit the budget ({per:.1f} s each)")
    return min(fits, wanted)


def _calibration_ids(answered: list[EvalItem], n: int, seed: int) -> set[str]:
    """Closed-set train questions held out of SFT to calibrate the label step on (none when
    some reference is free text, or too few questions would be left to train on)."""
    if n == 0 or not all((it.label or "").strip().lower() in LABELS for it in answered):
        return set()
    if len(answered) < 2 * n:
        n = len(answered) // 4
    if n < 2:
        return set()
    return set(carve_dev([it.id for it in answered], n / len(answered), seed))


def preference_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """Preference tuning from the generator's own mistakes and, with `--feedback`, users' thumbs
    and revisions: KTO where there are up and down judgements, CLAIR where there are revisions.

    Own mistakes come from the train questions' references (`ragsys.train.generator.feedback`):
    the generator answers them on the pipeline's passages, each answer is judged against its
    reference (a thumb), and each wrong one is revised to the reference (a CLAIR pair). With a
    feedback store the users' records join the same data. Methods in `preference_methods` run
    in order, each on top of the last; one left without examples (e.g. CLAIR when every own
    answer was right) is skipped and said so.
    """
    if config.generator is None:
        return "the pipeline has no generator"
    answered, version = with_reference(ctx.train), ctx.settings.feedback_version
    counts: dict[str, int] = {}
    if ctx.feedback is not None:
        counts = read_feedback(ctx.feedback, version, ctx.feedback_held_out()).counts()
        ctx.log(f"preference: feedback of version {version}: {counts}")
    if not answered and not counts.get("thumbs_up") and not counts.get("thumbs_down"):
        return "no train question has a reference answer or label, and no --feedback of this version"
    current: PipelineConfig = config
    # `feedback`: the store's records of `feedback_version`, deduplicated; each method's own
    # `feedback` says what it consumed of them (KTO the thumbs, CLAIR the revisions)
    extra: dict[str, Any] = {"feedback": counts, "feedback_version": version}
    extra["own_mistakes_from"] = len(answered)
    skipped: dict[str, str] = {}
    methods = ctx.settings.preference_methods
    for i, method in enumerate(methods):
        train = _method_settings(ctx, config, method, len(methods) - i)
        try:
            result = train_generator(
                on_main(ctx.world, partial(ready_generator, current, out / method)),
                train,
                index=ctx.scorer.index(index_dir),
                items=answered,
                feedback=ctx.feedback,
                out=out / method / "train",
                progress=ctx.train_progress,
            )
        except NoPreferenceSignal as e:
            skipped[method] = str(e)
            ctx.log(f"preference: {method} skipped ({e})")
            continue
        current = result.pipeline
        extra[method] = result.model_dump(mode="json", exclude={"pipeline"})
    if current is config:
        return "no preference method had data to learn from: " + "; ".join(
            f"{m}: {r}" for m, r in skipped.items()
        )
    return Proposal(current, index_dir, ANSWER, {**extra, "skipped": skipped})


def _method_settings(
    ctx: TuneContext, config: PipelineConfig, method: str, still_to_run: int
) -> GeneratorTrainConfig:
    """A preference method's training settings: an equal share of the minutes left for each
    method still to run, and the feedback of `feedback_version` minus the judged questions'."""
    left = ctx.minutes_left()
    return ctx.settings.generator.model_copy(
        update={
            "method": method, "seed": ctx.seed, "max_minutes": None if left is None else left / still_to_run,
            "k": passages_for(config, ctx.settings.answer_k),
            "feedback_version": ctx.settings.feedback_version, "feedback_held_out": ctx.feedback_held_out(),
        }
    )  # fmt: skip


def ready_generator(config: PipelineConfig, out: Path) -> PipelineConfig:
    """A generator that already carries an adapter is merged into full weights first, so the
    next adapter trains on top of it (one adapter per generator config)."""
    return stack_on_adapter(config, out / "merged")
