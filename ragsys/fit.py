"""Fitting a pipeline's learned mixture on a dev split carved from the train questions."""

from __future__ import annotations

from ragsys.eval.metrics import items_to_qrels
from ragsys.evalset import EvalItem
from ragsys.fusion import MixtureFit, fit_mixture
from ragsys.mixture import LearnedMixtureConfig, carve_dev
from ragsys.pipeline import PipelineConfig, SearchPipeline, retrieve_many


def fit_learned_mixture(
    config: PipelineConfig, search: SearchPipeline, train_items: list[EvalItem], corpus_ids: set[str]
) -> tuple[PipelineConfig, MixtureFit]:
    """Returns the pipeline with `fusion.fitted` set, and the fit (all candidates tried)."""
    fusion = config.fusion
    if not isinstance(fusion, LearnedMixtureConfig):
        raise ValueError(f"pipeline {config.name!r} has no learned mixture (fusion kind {fusion.kind!r})")
    scorable = [it for it in train_items if it.gold_doc_ids]
    dev_ids = set(carve_dev([it.id for it in scorable], fusion.dev_fraction, fusion.seed))
    dev = [it for it in scorable if it.id in dev_ids]
    qrels = items_to_qrels(dev, corpus_ids=corpus_ids)
    questions = [it.question for it in dev]
    per_retriever = [retrieve_many(r, questions, config.candidates) for r in search.retrievers]
    runs = [[run[i] for run in per_retriever] for i in range(len(dev))]
    fit = fit_mixture(runs, [qrels.get(it.id, {}) for it in dev], seed=fusion.seed)
    fitted = fusion.model_copy(
        update={"fitted": fit.config, "dev_ndcg_at_10": fit.ndcg_at_10, "dev_queries": fit.n_queries}
    )
    return config.model_copy(update={"fusion": fitted}), fit
