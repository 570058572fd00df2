"""`ragsys convert` (public datasets to eval sets) and `ragsys eval` (score a pipeline on one)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ragsys.cli.console import Bars, emit_json, err, user_errors
from ragsys.cli.options import EvalSetOpt, FilterOpt, IndexOpt, JsonOpt, PipelineOpt

if TYPE_CHECKING:
    from ragsys.eval.evalset import EvalItem, EvalSetReader
    from ragsys.pipeline import Pipeline


def convert(
    kind: Annotated[
        str, typer.Argument(help="beir | pubmedqa | sec10q | unanswerable (SOURCE: an eval set; adds twins)")
    ],
    source: Annotated[Path, typer.Argument(help="the dataset folder (an eval-set file for unanswerable)")],
    out_file: Annotated[Path, typer.Option("--out", help="eval set JSONL to write")],
    corpus_out: Annotated[
        Path | None,
        typer.Option("--corpus-out", help="write the documents as a BEIR corpus.jsonl (pubmedqa)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the splits a converter makes itself")] = 0,
) -> None:
    """Convert a public dataset into ragsys's eval-set JSONL (and a corpus where needed)."""
    from ragsys.eval.convert import convert_dataset, write_corpus_jsonl
    from ragsys.eval.evalset import save_eval_set

    with user_errors():
        items, corpus = convert_dataset(kind, source, seed)
    save_eval_set(items, out_file)
    splits: dict[str, int] = {}
    for item in items:
        splits[item.split] = splits.get(item.split, 0) + 1
    err.print(f"wrote {len(items)} questions to {out_file} (splits: {splits})")
    if corpus_out is None:
        return
    if corpus is None:
        err.print(f"[yellow]note:[/yellow] {kind} documents are already a corpus ragsys index reads; "
                  "--corpus-out ignored")  # fmt: skip
        return
    write_corpus_jsonl(corpus, corpus_out)
    err.print(f"wrote {len(corpus)} documents to {corpus_out}")


def eval_(
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    split: Annotated[str, typer.Option(help="which split to score")] = "test",
    pipeline: PipelineOpt = None,
    baseline: Annotated[Path | None, typer.Option(help="a run JSON to compare with (paired test)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where the JSON and HTML report go")] = Path(
        "runs/eval"
    ),
    name: Annotated[str | None, typer.Option(help="run name (file names of the report)")] = None,
    limit: Annotated[int | None, typer.Option(help="score only the first N questions (smoke runs)")] = None,
    seed: Annotated[int, typer.Option(help="bootstrap and fitting seed")] = 0,
    generate: Annotated[
        bool | None,
        typer.Option(
            "--generate/--no-generate", help="score answers (default: if the set has answers/labels)"
        ),
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help="passages given to the generator")] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="override the generator's max_new_tokens")
    ] = None,
    label_rule: Annotated[
        str, typer.Option(help="constrained (the model picks a label) or rule (read off the answer)")
    ] = "constrained",
    filter_: FilterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a pipeline on an eval set: IR metrics, answer metrics, 95% CIs, paired test, HTML report."""
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.eval.report import finish_report
    from ragsys.eval.run import evaluate
    from ragsys.index.filters import merge_filters, parse_filters
    from ragsys.index.reader import Index

    with user_errors(), Bars() as bars:
        if label_rule not in ("constrained", "rule"):
            raise ValueError(f"--label-rule {label_rule!r}: choose constrained or rule")
        reader = EvalSetReader(eval_set)
        items = reader.read([split])[:limit] if limit else reader.read([split])
        index = Index.open(index_dir)
        built, extra = _pipeline(pipeline, index, reader, split, items, generate, max_new_tokens, bars.log)
        if filter_:  # every question searched within the filter (recorded in the run's config)
            filters = merge_filters(built.config.filters, parse_filters(filter_))
            built = replace(built, config=built.config.model_copy(update={"filters": filters}))
        result, per_query = evaluate(built, items, split=split, k=k, label_rule=label_rule, progress=bars)  # type: ignore[arg-type]
        config = built.config
        result.update(
            split=split, eval_set=str(eval_set), index=str(index_dir), seed=seed,
            config=config.model_dump(mode="json"), generation=index.manifest.generation, **extra,
        )  # fmt: skip
        record = finish_report(
            name or f"{config.name}-{eval_set.stem}-{split}", result, per_query, out_dir, baseline
        )
    _print_eval(record)
    if as_json:
        emit_json({"n": record["n"], "metrics": record["metrics"], "ci95": record["ci95"],
                   "n_by_metric": record.get("n_by_metric", {})})  # fmt: skip


def _pipeline(
    spec: str | None, index: Any, reader: EvalSetReader, split: str, items: list[EvalItem],
    generate: bool | None, max_new_tokens: int | None, log: Any,
) -> tuple[Pipeline, dict[str, Any]]:  # fmt: skip
    """The pipeline to score, its learned mixture fit first when it has an unfitted one, and the
    generator loaded only when answers are scored (`--generate`, or the set has answers/labels)."""
    from ragsys.fusion import LearnedMixtureConfig
    from ragsys.pipeline import load_pipeline
    from ragsys.train.mixture import fit_learned_mixture

    config = load_pipeline(spec)
    built = config.build(index)
    extra: dict[str, Any] = {}
    if isinstance(config.fusion, LearnedMixtureConfig) and config.fusion.fitted is None:
        if config.fusion.fit_split == split:
            raise ValueError(
                f"the learned mixture fits on split {split!r}, the one being scored; "
                "pass a fitted pipeline (`ragsys train mixture`) or score another split"
            )
        log(f"fitting the learned mixture on a dev split of {config.fusion.fit_split!r} ...")
        fit_items = reader.read([config.fusion.fit_split])
        config, fit = fit_learned_mixture(config, built, fit_items, set(index.manifest.documents))
        built = replace(built, config=config)
        extra["mixture_fit"] = {"dev_ndcg@10": fit.ndcg_at_10, "dev_queries": fit.n_queries,
                                "fitted": fit.config.model_dump(mode="json")}  # fmt: skip
    wanted = generate is not False and config.generator is not None
    if not wanted or not (generate or any(it.answer or it.label for it in items)):
        return built, extra
    assert config.generator is not None
    gen_config = config.generator
    if max_new_tokens is not None:
        gen_config = gen_config.model_copy(update={"max_new_tokens": max_new_tokens})
    extra["generator"] = gen_config.model_dump(mode="json")
    return replace(built, generator=gen_config.build()), extra


def _print_eval(record: dict[str, object]) -> None:
    metrics = record["metrics"]
    ci95 = record["ci95"]
    assert isinstance(metrics, dict) and isinstance(ci95, dict)
    t = Table(title=f"{record['name']} (n={record['n']})")
    t.add_column("metric")
    t.add_column("mean", justify="right")
    t.add_column("95% CI", justify="right")
    for m, v in metrics.items():
        ci = ci95.get(m)
        t.add_row(m, f"{v:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
    err.print(t)
    comparison = record.get("comparison")
    if isinstance(comparison, dict):
        for m, c in comparison["metrics"].items():
            lo, hi = c["ci95"]
            err.print(f"vs {comparison['baseline']}: {m} {c['delta']:+.4f} (95% CI [{lo:+.4f}, {hi:+.4f}], "
                      f"p={c['p_value']:.4f})")  # fmt: skip
    files = record.get("files")
    if isinstance(files, dict):
        err.print(f"report: {files['html']}")
