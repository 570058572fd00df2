"""The retrieval stages of `ragsys tune`: synthetic queries, the dense encoder, the reranker,
the fusion mixture. The encoder and the reranker train through the same mine -> train ->
re-index recipe as `ragsys train` (`ragsys.train.mining.recipe`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.fusion import LearnedMixtureConfig
from ragsys.generate.hf import build_hf
from ragsys.pipeline import PipelineConfig
from ragsys.progress import counter
from ragsys.retrieve.dense import DenseConfig
from ragsys.scope import ScopeConfig
from ragsys.train.examples import LMScored
from ragsys.train.mining.ict import ict_pairs
from ragsys.train.mining.lm import lm_score_passages
from ragsys.train.mining.recipe import NoTrainingSignal, Pairs, reranker_recipe, retriever_recipe
from ragsys.train.mining.synthetic import cached_pairs
from ragsys.train.mixture import fit_learned_mixture
from ragsys.tune.context import Proposal, TuneContext, with_gold, with_reference
from ragsys.tune.scoring import EVIDENCE, RETRIEVAL, passages_for
from ragsys.tune.shared import on_main


def synthetic_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """A data stage: synthetic questions for a train split with few labelled ones."""
    n = len(with_gold(ctx.train))
    if n >= ctx.settings.synthetic_below:
        return f"the train split has {n} questions with gold evidence (>= {ctx.settings.synthetic_below})"
    ctx.synthetic, result = on_main(ctx.world, lambda: cached_pairs(
        out / "pairs.jsonl", ctx.scorer.index(index_dir),
        lambda: ctx.scorer.search(config, index_dir, generate=False), ctx.settings.synthetic,
        progress=lambda d, t: ctx.progress("synthetic queries", d, t),
    ))  # fmt: skip  # generated and saved once; every process trains on the same pairs
    if result is None:
        return Proposal(config, index_dir, None, {"kept": len(ctx.synthetic), "reused": True})
    return Proposal(config, index_dir, None, result.model_dump(mode="json", exclude={"pairs"}))


# Seconds the last re-embedding of the corpus took (`TuneContext.timings`): the next retriever
# training (a later fold, or the kept stage's final run) leaves that much of its time for it.
REINDEX_S = "reindex_s"
LM_SHARE = 0.25  # of a ranker stage's minutes: on the 10-Q filings 94 questions took 11.4 of its 22.7


def lm_scored(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
) -> list[LMScored]:
    """REPLUG-style targets: the generator judges each train question's top passages."""
    answered = with_reference(items)[: ctx.settings.lm_questions]
    if config.generator is None or not answered or ctx.settings.lm_questions == 0:
        return []
    search = ctx.scorer.search(config, index_dir, generate=False)
    # LM supervision reads the generator's per-token likelihoods from its torch weights (the
    # quantized backend answers; it does not score).
    generator = build_hf(config.generator.for_training())
    hits = search.search_many([it.question for it in answered], ctx.settings.lm_k)
    minutes = ctx.minutes_left()  # a share of the stage's time: the ranker still has to train
    deadline = None if minutes is None else time.monotonic() + LM_SHARE * minutes * 60.0
    scored = lm_score_passages(
        generator,
        answered,
        hits,
        ctx.settings.lm_k,
        on_progress=counter(ctx.progress, "LM supervision", len(answered)),
        deadline=deadline,
    )
    if len(scored) < len(answered):
        ctx.log(f"LM supervision: {len(scored)} of {len(answered)} questions in its share of the time")
    return scored


def retriever_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, joint: bool = True
) -> Proposal | str:
    """Fine-tune the dense encoder on gold pairs (plus, jointly, synthetic queries and LM targets)
    mined from the current pipeline; the tuned encoder gets its own copy of the index."""
    if not any(isinstance(r, DenseConfig) for r in config.retrievers):
        return "the pipeline has no dense retriever"
    train = ctx.settings.retriever.model_copy(update={"seed": ctx.seed})
    pairs = [("synthetic queries", ctx.synthetic)] if joint and ctx.synthetic else []
    try:  # LM supervision, mining, training and re-embedding all end by the stage's deadline
        run = retriever_recipe(
            config, train, with_gold(ctx.train), ctx.scorer.index(index_dir), out / "train",
            progress=ctx.progress, log=ctx.log, pairs=pairs,
            lm_scored=lm_scored(ctx, config, index_dir, ctx.train) if joint else (), reindex=out / "index",
            deadline=ctx.budget, reindex_s=ctx.timings.get(REINDEX_S, 0.0),
        )  # fmt: skip
    except NoTrainingSignal as e:
        return str(e)
    if run.reindex_s:
        ctx.timings[REINDEX_S] = run.reindex_s
    extra = run.result.model_dump(mode="json", exclude={"pipeline"})
    return Proposal(run.result.pipeline, out / "index", ctx.ranking_metric, extra)


def reranker_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, joint: bool = True
) -> Proposal | str:
    """Train a cross-encoder on the current retrieval's mistakes (plus inverse-cloze pseudo-queries,
    and jointly synthetic queries and LM targets); proposed only if its dev check passes."""
    index = ctx.scorer.index(index_dir)
    judged = passages_for(config, ctx.settings.answer_k) if ctx.ranking_metric == EVIDENCE else None
    train = ctx.settings.reranker.model_copy(update={"seed": ctx.seed, "dev_evidence_k": judged})
    pairs: list[tuple[str, Pairs]] = []
    if ctx.settings.reranker_ict:  # free, label-less signal: the isolated control gets it too
        pairs.append(("pseudo-queries", ict_pairs(index, ctx.settings.reranker_ict, ctx.seed)))
    if joint and ctx.synthetic:
        pairs.append(("synthetic queries", ctx.synthetic))
    scored = lm_scored(ctx, config, index_dir, ctx.train) if joint else []
    try:
        result = reranker_recipe(
            config, train, with_gold(ctx.train), with_gold(ctx.dev), index, out / "train",
            progress=ctx.progress, pairs=pairs, lm_scored=scored,
            on_dev_scores=ctx.scorer.remember_pairs,  # judging the stage then reranks few pairs anew
            deadline=ctx.budget,  # the trainer gets what LM supervision and mining leave
        )  # fmt: skip
    except NoTrainingSignal as e:
        return str(e)
    extra = result.model_dump(mode="json", exclude={"pipeline"})
    if result.used:
        return Proposal(result.pipeline, index_dir, ctx.ranking_metric, extra)
    without = result.dev.without if result.dev is not None else float("nan")
    measure = "nDCG@10" if judged is None else f"figure recall@{judged}"
    reason = (f"no interpolation weight beat the candidates as retrieved on dev ({measure} {without:.4f}); "
              "the reranker is not used")  # fmt: skip
    return Proposal(config, index_dir, ctx.ranking_metric, extra, rejected=reason)


ROUTED_FIELDS = ("company", "ticker", "period", "period_end", "form")
SCOPE_CHOICES: dict[str, ScopeConfig | None] = {
    "off": None,
    "on a named company (confidence 1.0)": ScopeConfig(min_confidence=1.0),
    "on any cue: company, period or form (confidence 0.5)": ScopeConfig(min_confidence=0.5),
}


def scope_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """Scoping learned on the train questions' gold documents: each setting in `SCOPE_CHOICES`
    (off, routing on a named company only, routing on any cue) searches the train questions,
    and the one with the highest document nDCG@10 is proposed (ties keep the current one)."""
    gold = with_gold(ctx.train)
    if not gold:
        return "no train question has gold documents to learn scoping from"
    meta = ctx.scorer.index(index_dir).document_metadata()
    if not any(m.get(f) for m in meta.values() for f in ROUTED_FIELDS):
        return f"no document has metadata to route by ({', '.join(ROUTED_FIELDS)})"
    tried: dict[str, float] = {}
    current = next((n for n, c in SCOPE_CHOICES.items() if c == config.scoping), None)
    for name, scoping in SCOPE_CHOICES.items():
        scores = ctx.scorer.retrieval(config.model_copy(update={"scoping": scoping}), index_dir, gold)
        tried[name] = sum(scores.values()) / len(scores) if scores else 0.0
        ctx.log(f"scope: {name}: train nDCG@10 {tried[name]:.4f} ({len(scores)} questions)")
    best = max(tried, key=lambda n: (round(tried[n], 12), n == current))
    extra = {"tried": tried, "chosen": best, "questions": len(gold)}
    if best == current:
        return f"the current setting ({best}) is best on the train questions"
    return Proposal(config.model_copy(update={"scoping": SCOPE_CHOICES[best]}), index_dir, RETRIEVAL, extra)


def mixture_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """Fusion family, RRF k and weights fit on the train questions' gold documents."""
    if len(config.retrievers) < 2:
        return "one retriever: nothing to mix"
    gold = with_gold(ctx.train)
    if not gold:
        return "no train question has gold documents to fit fusion weights on"
    learned = config.model_copy(update={"fusion": LearnedMixtureConfig(seed=ctx.seed)})
    search = ctx.scorer.search(learned, index_dir, generate=False)
    index = ctx.scorer.index(index_dir)
    fitted, fit = fit_learned_mixture(learned, search, gold, set(index.manifest.documents))
    return Proposal(
        fitted,
        index_dir,
        RETRIEVAL,
        {"fitted": fit.config.model_dump(mode="json"), "fit_ndcg@10": fit.ndcg_at_10},
    )
