"""The control for "tuned jointly": the same components tuned in isolation.

Each component the joint run kept is trained again from the *base* pipeline on gold data
alone -- hard negatives mined from the untuned retrieval, no LM supervision, no synthetic
queries, the generator fine-tuned on gold passages instead of what the tuned retriever
returns -- and the pieces are put together. When the joint run's training data for a
component was already exactly that (e.g. the retriever of an eval set without reference
answers, tuned first), the joint component is reused and the report says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget
from ragsys.tune.answer_stages import generator_stage
from ragsys.tune.context import TuneContext, with_reference
from ragsys.tune.report import System, stage_inputs
from ragsys.tune.retrieval_stages import mixture_stage, reranker_stage, retriever_stage
from ragsys.tune.state import StageRecord, TuneState, kept_stages


def build_isolated(ctx: TuneContext, state: TuneState, out: Path) -> System | None:
    """The control, or None when no stage was kept. Built once: a re-run after an interruption
    reuses what its trainers checkpointed under `out`."""
    kept = {r.name: r for r in kept_stages(state.stages)}
    if not kept:
        return None
    ctx.log("building the isolated control (each component tuned alone on gold data)")
    base = PipelineConfig.load(Path(state.base_pipeline))
    base_index = Path(state.base_index)
    config, index, notes = base, base_index, []
    if "scope" in kept and kept["scope"].pipeline_dir:
        # learned from the train questions' gold documents and the index's metadata alone: the
        # isolated control would learn the same setting
        config = config.model_copy(
            update={"scoping": PipelineConfig.load(Path(kept["scope"].pipeline_dir)).scoping}
        )
        notes.append("scoping: learned on gold documents alone either way, reused")
    if "retriever" in kept:  # trained from the base pipeline, put into the control built so far
        config, index, note = _retriever(ctx, kept["retriever"], base, base_index, out / "retriever", config)
        notes.append(note)
    if "reranker" in kept:
        rec = kept["reranker"]
        if _reranker_data_was_isolated(ctx, state, base) and rec.pipeline_dir:
            tuned = PipelineConfig.load(Path(rec.pipeline_dir))
            config = config.model_copy(update={"reranker": tuned.reranker})
            notes.append(
                "reranker: the joint run's had exactly the isolated data (untuned candidates, gold "
                "labels and pseudo-queries, no LM supervision or synthetic queries), reused"
            )
        else:
            proposal = reranker_stage(_budgeted(ctx, rec), base, base_index, out / "reranker", joint=False)
            if not isinstance(proposal, str) and proposal.rejected is None:
                config = config.model_copy(update={"reranker": proposal.config.reranker})
                notes.append("reranker trained on the untuned retrieval's candidates")
            else:
                notes.append("the reranker trained in isolation did not pass its dev check; none used")
    if "context" in kept and kept["context"].pipeline_dir:
        # a setting, not a trained component: the control reads as many passages as the joint stack
        chosen = PipelineConfig.load(Path(kept["context"].pipeline_dir)).generator
        if chosen is not None and base.generator is not None:
            gen = base.generator.model_copy(update={"passages": chosen.passages})
            base = base.model_copy(update={"generator": gen})
            config = config.model_copy(update={"generator": gen})
            notes.append(f"{chosen.passages} passages per prompt, as the joint context stage chose")
    config = _label_offsets(kept, config, notes)
    if "mixture" in kept:
        proposal = mixture_stage(ctx, base, base_index, out / "mixture")
        if not isinstance(proposal, str):
            config = config.model_copy(update={"fusion": proposal.config.fusion})
            notes.append("fusion weights fit on the untuned retrievers")
    if "generator" in kept:
        proposal = generator_stage(
            _budgeted(ctx, kept["generator"]), base, base_index, out / "generator", contexts="gold"
        )
        if not isinstance(proposal, str):
            config = config.model_copy(update={"generator": proposal.config.generator})
            notes.append("generator fine-tuned on gold passages")
    if "preference" in kept:
        notes.append("preference tuning is not repeated in isolation")
    return System("isolated", config, index, "; ".join(notes))


def _label_offsets(kept: dict[str, StageRecord], config: PipelineConfig, notes: list[str]) -> PipelineConfig:
    """The joint run's label offsets (fitted on the train labels) when no generator stage was kept;
    an SFT'd control generator is calibrated by its own stage instead."""
    rec = kept.get("labels")
    if rec is None or "generator" in kept or not rec.pipeline_dir or config.generator is None:
        return config
    fitted = PipelineConfig.load(Path(rec.pipeline_dir)).generator
    if fitted is None:
        return config
    notes.append("label offsets: the joint run's, reused")
    gen = config.generator.model_copy(update={"label_bias": fitted.label_bias})
    return config.model_copy(update={"generator": gen})


def _retriever(
    ctx: TuneContext,
    joint: StageRecord,
    base: PipelineConfig,
    base_index: Path,
    out: Path,
    into: PipelineConfig,
) -> tuple[PipelineConfig, Path, str]:
    """`into` (the control so far: its scoping, ...) with retrievers trained from `base` on gold
    pairs alone (or the joint run's, when its data was exactly that), and the index they search."""
    joint_lm = int(joint.extra.get("lm_examples", 0) or 0)
    if joint_lm == 0 and not ctx.synthetic and joint.pipeline_dir and joint.index_dir:
        tuned = PipelineConfig.load(Path(joint.pipeline_dir))
        note = "retriever: same gold-only data as the joint run, reused"
        return into.model_copy(update={"retrievers": tuned.retrievers}), Path(joint.index_dir), note
    proposal = retriever_stage(_budgeted(ctx, joint), base, base_index, out, joint=False)
    if isinstance(proposal, str):
        return into, base_index, f"retriever not trained in isolation: {proposal}"
    trained = into.model_copy(update={"retrievers": proposal.config.retrievers})
    return trained, proposal.index_dir, "retriever trained on gold pairs only"


def _budgeted(ctx: TuneContext, joint: StageRecord) -> TuneContext:
    """The control trains for as many minutes as the joint stage took, not on what the run's
    budget has left: after the stages that is often nothing, and a control trained for a few
    seconds would flatter "joint". The joint stage's minutes include its mining and dev check,
    so the control never gets less training time than the joint component had."""
    return dataclasses.replace(ctx, budget=TimeBudget(max(joint.minutes, 1.0)))


def _reranker_data_was_isolated(ctx: TuneContext, state: TuneState, base: PipelineConfig) -> bool:
    """True when the joint reranker stage trained on exactly what the control would: it started
    from the untuned retrieval (no earlier stage kept) and had neither synthetic queries nor
    LM-supervised targets. Retraining it would only repeat the same seeded run."""
    started_from_base = stage_inputs(state).get("reranker") == (state.base_pipeline, state.base_index)
    lm_supervised = (
        base.generator is not None and ctx.settings.lm_questions > 0 and bool(with_reference(ctx.train))
    )
    return started_from_base and not ctx.synthetic and not lm_supervised
