"""The control for "tuned jointly": the same components tuned in isolation.

Each component the joint run kept is trained again from the *base* pipeline on gold data
alone -- hard negatives mined from the untuned retrieval, no LM supervision, no synthetic
queries, the generator fine-tuned on gold passages instead of what the tuned retriever
returns -- and the pieces are put together. When the joint run's training data for a
component was already exactly that (e.g. the retriever of an eval set without reference
answers, tuned first), the joint component is reused and the report says so.
"""

from __future__ import annotations

from pathlib import Path

from ragsys.pipeline import PipelineConfig
from ragsys.tune.report import System
from ragsys.tune.stages import TuneContext, generator_stage, mixture_stage, reranker_stage, retriever_stage
from ragsys.tune.state import StageRecord, TuneState


def build_isolated(ctx: TuneContext, state: TuneState, out: Path) -> System | None:
    kept = {r.name: r for r in state.stages if r.status == "kept" and r.metric is not None}
    if not kept:
        return None
    base = PipelineConfig.load(Path(state.base_pipeline))
    base_index = Path(state.base_index)
    config, index, notes = base, base_index, []
    if "retriever" in kept:
        config, index, note = _retriever(ctx, kept["retriever"], base, base_index, out / "retriever")
        notes.append(note)
    if "reranker" in kept:
        proposal = reranker_stage(ctx, base, base_index, out / "reranker", joint=False)
        if not isinstance(proposal, str) and proposal.rejected is None:
            config = config.model_copy(update={"reranker": proposal.config.reranker})
            notes.append("reranker trained on the untuned retrieval's candidates")
        else:
            notes.append("the reranker trained in isolation did not pass its dev check; none used")
    if "mixture" in kept:
        proposal = mixture_stage(ctx, base, base_index, out / "mixture")
        if not isinstance(proposal, str):
            config = config.model_copy(update={"fusion": proposal.config.fusion})
            notes.append("fusion weights fit on the untuned retrievers")
    if "generator" in kept:
        proposal = generator_stage(ctx, base, base_index, out / "generator", contexts="gold")
        if not isinstance(proposal, str):
            config = config.model_copy(update={"generator": proposal.config.generator})
            notes.append("generator fine-tuned on gold passages")
    if "preference" in kept:
        notes.append("preference tuning is not repeated in isolation")
    return System("isolated", config, index, "; ".join(notes))


def _retriever(
    ctx: TuneContext, joint: StageRecord, base: PipelineConfig, base_index: Path, out: Path
) -> tuple[PipelineConfig, Path, str]:
    joint_lm = int(joint.extra.get("lm_examples", 0) or 0)
    if joint_lm == 0 and not ctx.synthetic and joint.pipeline_dir and joint.index_dir:
        tuned = PipelineConfig.load(Path(joint.pipeline_dir))
        config = base.model_copy(update={"retrievers": tuned.retrievers})
        return config, Path(joint.index_dir), "retriever: same gold-only data as the joint run, reused"
    proposal = retriever_stage(ctx, base, base_index, out, joint=False)
    if isinstance(proposal, str):
        return base, base_index, f"retriever not trained in isolation: {proposal}"
    config = base.model_copy(update={"retrievers": proposal.config.retrievers})
    return config, proposal.index_dir, "retriever trained on gold pairs only"
