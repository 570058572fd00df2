"""The body of `ragsys eval`, kept apart from argument parsing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragsys.assemble import build_search
from ragsys.eval.answering import LabelRule, generate_and_score
from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.report import finish_report
from ragsys.eval.retrieval import score_retrieval, search_all
from ragsys.fusion import LearnedMixtureConfig
from ragsys.index.reader import Index
from ragsys.pipeline import load_pipeline
from ragsys.train.mixture import fit_learned_mixture


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@dataclass(frozen=True)
class AnswerOptions:
    """`generate`: None = when the pipeline has a generator and the set has answers or labels."""

    generate: bool | None = None
    k: int | None = None
    max_new_tokens: int | None = None
    label_rule: LabelRule = "constrained"

    def wanted(self, has_generator: bool, items: Sequence[EvalItem]) -> bool:
        if self.generate is False or not has_generator:
            return False
        return bool(self.generate) or any(it.answer or it.label for it in items)


def run_eval(
    index_dir: Path,
    eval_set: Path,
    split: str,
    pipeline: str | None,
    baseline: Path | None,
    out_dir: Path,
    name: str | None,
    limit: int | None,
    seed: int,
    console: Console,
    answers: AnswerOptions | None = None,
) -> dict[str, Any]:
    config = load_pipeline(pipeline)
    reader = EvalSetReader(eval_set)
    items = reader.read([split])[:limit] if limit else reader.read([split])
    index = Index.open(index_dir)
    search = build_search(config, index)  # the generator is built below, only if answers are scored
    fit_info: dict[str, Any] = {}
    if isinstance(config.fusion, LearnedMixtureConfig) and config.fusion.fitted is None:
        if config.fusion.fit_split == split:
            raise ValueError(
                f"the learned mixture fits on split {split!r}, the one being scored; "
                "pass a fitted pipeline (`ragsys train mixture`) or score another split"
            )
        console.print(f"fitting the learned mixture on a dev split of {config.fusion.fit_split!r} ...")
        config, fit = fit_learned_mixture(config, search, reader.read([config.fusion.fit_split]),
                                          set(index.manifest.documents))  # fmt: skip
        search = replace(search, config=config)
        fit_info = {"mixture_fit": {"dev_ndcg@10": fit.ndcg_at_10, "dev_queries": fit.n_queries,
                                    "fitted": fit.config.model_dump(mode="json")}}  # fmt: skip
    t0 = time.monotonic()
    with _progress(console) as progress:
        task = progress.add_task(f"search ({split})", total=len(items))
        hits = search_all(search, [it.question for it in items],
                          on_progress=lambda n: progress.advance(task, n))  # fmt: skip
    seconds = time.monotonic() - t0
    result, per_query = score_retrieval(items, hits)
    opts = answers or AnswerOptions()
    if opts.wanted(config.generator is not None, items):
        assert config.generator is not None
        gen_config = config.generator
        if opts.max_new_tokens is not None:
            gen_config = gen_config.model_copy(update={"max_new_tokens": opts.max_new_tokens})
        generator = gen_config.build()
        with _progress(console) as progress:
            task = progress.add_task(f"generate ({split})", total=len(items))
            answer_pq, extra = generate_and_score(
                generator, items, hits, opts.k or config.top_k, opts.label_rule,
                on_progress=lambda n: progress.advance(task, n),
            )  # fmt: skip
        for qid, values in answer_pq.items():
            per_query.setdefault(qid, {}).update(values)
        result.update(extra, generator=gen_config.model_dump(mode="json"))
    result.update(
        split=split, eval_set=str(eval_set), index=str(index_dir), seed=seed,
        config=config.model_dump(mode="json"), seconds_search=round(seconds, 3),
        generation=index.manifest.generation, **fit_info,
    )  # fmt: skip
    run_name = name or f"{config.name}-{eval_set.stem}-{split}"
    return finish_report(run_name, result, per_query, out_dir, baseline)
