"""The body of `ragsys eval`, kept apart from argument parsing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragsys.assemble import build_search
from ragsys.evalset import EvalSetReader
from ragsys.evaluate import finish_report, score_retrieval, search_all
from ragsys.fit import fit_learned_mixture
from ragsys.index.reader import Index
from ragsys.mixture import LearnedMixtureConfig
from ragsys.pipeline import load_pipeline


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
) -> dict[str, Any]:
    config = load_pipeline(pipeline)
    reader = EvalSetReader(eval_set)
    items = reader.read([split])[:limit] if limit else reader.read([split])
    index = Index.open(index_dir)
    search = build_search(config, index)
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
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:  # fmt: skip
        task = progress.add_task(f"search ({split})", total=len(items))
        hits = search_all(search, [it.question for it in items],
                          on_progress=lambda n: progress.advance(task, n))  # fmt: skip
    seconds = time.monotonic() - t0
    result, per_query = score_retrieval(items, hits)
    result.update(
        split=split, eval_set=str(eval_set), index=str(index_dir), seed=seed,
        config=config.model_dump(mode="json"), seconds_search=round(seconds, 3),
        generation=index.manifest.generation, **fit_info,
    )  # fmt: skip
    run_name = name or f"{config.name}-{eval_set.stem}-{split}"
    return finish_report(run_name, result, per_query, out_dir, baseline)
