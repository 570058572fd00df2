"""The `ragsys` command line (typer + rich). Progress and tables go to stderr; with
`--json` the machine-readable result is the last line of stdout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragsys.cli_common import emit_json, err, user_errors
from ragsys.jsonshape import answer_json, hit_json
from ragsys.pipeline import load_pipeline

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Retrieval-augmented generation as a system."
)
out = Console()

IndexOpt = Annotated[Path, typer.Option("--index", help="index directory")]
PipelineOpt = Annotated[
    str | None, typer.Option("--pipeline", help="a pipelines/*.py file or a saved pipeline directory")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line of stdout")]


@app.command()
def index(
    paths: Annotated[
        list[Path], typer.Argument(help="PDF/text/markdown files, folders, or BEIR corpus.jsonl")
    ],
    index_dir: IndexOpt,
    pipeline: PipelineOpt = None,
    password: Annotated[
        list[str] | None, typer.Option("--password", help="tried on encrypted PDFs; repeat for several")
    ] = None,
    extractor: Annotated[str | None, typer.Option(help="pymupdf (default) or unstructured")] = None,
    workers: Annotated[int, typer.Option(help="extraction processes")] = 2,
    strict: Annotated[bool, typer.Option("--strict", help="exit non-zero if any file fails")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Extract, chunk, embed and store documents; incremental, atomic and resumable."""
    from ragsys.cli_progress import RichReporter
    from ragsys.index.build import index_paths

    with user_errors():
        config = load_pipeline(pipeline)
        if extractor is not None:
            config = config.model_copy(update={"extractor": _extractor_config(extractor)})
        with RichReporter(err) as reporter:
            summary = index_paths(paths, index_dir, config, passwords=password or (), workers=workers,
                                  reporter=reporter)  # fmt: skip
    _print_index_summary(summary)
    if as_json:
        emit_json(summary.cli_json())
    if summary.files_indexed == 0 or (strict and summary.files_failed):
        raise typer.Exit(1)


def _extractor_config(name: str) -> object:
    from ragsys.extract import PdfExtractorConfig, UnstructuredExtractorConfig

    if name == "pymupdf":
        return PdfExtractorConfig()
    if name == "unstructured":
        return UnstructuredExtractorConfig()
    raise ValueError(f"--extractor {name!r}: choose pymupdf or unstructured")


def _print_index_summary(summary: object) -> None:
    from ragsys.index.summary import IndexSummary

    assert isinstance(summary, IndexSummary)
    t = Table(title=f"index {summary.generation}", show_header=False)
    for k, v in [
        ("documents indexed (this run's inputs)", summary.files_indexed),
        ("new or changed", summary.files_new_or_changed),
        ("skipped, unchanged", summary.files_skipped_unchanged),
        ("deleted", summary.files_deleted),
        ("failed", len(summary.files_failed)),
        ("index totals", f"{summary.documents} documents, {summary.pages} pages, {summary.chunks} chunks"),
        ("seconds", f"{summary.seconds:.2f}"),
    ]:
        t.add_row(k, str(v))
    err.print(t)
    for f in summary.files_failed:
        err.print(f"[yellow]failed[/yellow] {f.path}: {f.error}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    index_dir: IndexOpt,
    k: Annotated[int, typer.Option("-k", help="number of hits")] = 10,
    pipeline: PipelineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieve the best passages for a query (no generation)."""
    from ragsys.assemble import build_search
    from ragsys.index.reader import Index

    with user_errors():
        config = load_pipeline(pipeline)
        idx = Index.open(index_dir)
        hits = build_search(config, idx).search(query, k)
        if as_json:
            emit_json({"hits": [hit_json(h) for h in hits]})
            return
        for rank, h in enumerate(hits, start=1):
            pages = f"p.{h.chunk.page_start}" + (
                f"-{h.chunk.page_end}" if h.chunk.page_end != h.chunk.page_start else ""
            )
            out.print(f"[bold]{rank:>2}.[/bold] {h.chunk.doc_id} {pages}  [dim]score {h.score:.4f}[/dim]")
            snippet = " ".join(h.chunk.text.split())[:300]
            out.print(f"    {snippet}", highlight=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    index_dir: IndexOpt,
    pipeline: PipelineOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="passages retrieved for the generator")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the index, citing passages as \\[n] with their document and page."""
    from ragsys.assemble import build_search
    from ragsys.generate.hf import HFGenerator
    from ragsys.index.reader import Index

    with user_errors():
        config = load_pipeline(pipeline)
        if config.generator is None:
            raise ValueError(f"pipeline {config.name!r} has no generator; use one with `generator=...`")
        rag = build_search(config, Index.open(index_dir), generate=True)
        assert isinstance(rag.generator, HFGenerator)
        t0 = time.perf_counter()
        hits = rag.search(question, k)
        retrieve_s = time.perf_counter() - t0
        if as_json:
            answer = rag.generator.generate(question, hits)
        else:
            out.print("[bold]Answer:[/bold] ", end="")
            answer = rag.generator.stream(
                question, hits, on_text=lambda t: out.print(t, end="", highlight=False)
            )
            out.print()
    timings = {"retrieve_s": retrieve_s, **answer.timings}
    if as_json:
        emit_json(answer_json(answer, timings))
        return
    if answer.abstained:
        out.print("[yellow](abstained: the passages do not answer this)[/yellow]")
    for c in answer.citations:
        out.print(f"  [{c.n}] {c.doc} {_pages(c.page_start, c.page_end)}", highlight=False)
    if not answer.citations and not answer.abstained:
        out.print("[dim](the answer cites no passage)[/dim]")
    out.print("[bold]Passages given to the model:[/bold]")
    for n, h in enumerate(answer.contexts, start=1):
        snippet = " ".join(h.chunk.text.split())[:160]
        out.print(
            f"  [{n}] {h.chunk.doc_id} {_pages(h.chunk.page_start, h.chunk.page_end)}: {snippet}",
            highlight=False,
        )
    err.print(f"[dim]retrieve {retrieve_s:.2f}s, generate {answer.timings.get('generate_s', 0):.2f}s, "
              f"{answer.timings.get('tokens_per_s', 0):.1f} tokens/s[/dim]")  # fmt: skip


def _pages(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"


@app.command()
def inspect(
    index_dir: Annotated[Path, typer.Argument(help="index directory")],
    pipeline: PipelineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What an index holds, which models built it, and whether a reranker is trained."""
    from ragsys.index.manifest import read_manifest

    with user_errors():
        m = read_manifest(index_dir)
        config = load_pipeline(pipeline)
    reranker = (
        f"{config.reranker.model} (top {config.reranker.top_n})"
        if config.reranker is not None
        else "none: no pretrained cross-encoder ships offline; train one with `ragsys train reranker`"
    )
    info = {
        "generation": m.generation, "created": m.created, "documents": len(m.documents), "pages": m.pages,
        "chunks": m.chunks, "chunking": m.chunking, "extractor": m.extractor,
        "bm25": [r.tokenizer for r in m.sparse],
        "dense": [{"model": r.model, "dim": r.dim, "index": r.index_kind, "fingerprint": r.fingerprint}
                  for r in m.dense],
        "pipeline": config.name, "reranker": reranker,
    }  # fmt: skip
    if as_json:
        emit_json(info)
        return
    t = Table(title=str(index_dir), show_header=False)
    for key, value in info.items():
        t.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    out.print(t)


@app.command()
def convert(
    kind: Annotated[str, typer.Argument(help="beir | pubmedqa | sec10q")],
    source: Annotated[Path, typer.Argument(help="the dataset folder")],
    out_file: Annotated[Path, typer.Option("--out", help="eval set JSONL to write")],
    corpus_out: Annotated[
        Path | None,
        typer.Option("--corpus-out", help="write the documents as a BEIR corpus.jsonl (pubmedqa)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the splits a converter makes itself")] = 0,
) -> None:
    """Convert a public dataset into ragsys's eval-set JSONL (and a corpus where needed)."""
    from ragsys.eval.convert import (
        ConvertError,
        convert_beir,
        convert_pubmedqa,
        convert_sec10q,
        write_corpus_jsonl,
    )
    from ragsys.eval.evalset import save_eval_set

    try:
        corpus: list[dict[str, str]] | None = None
        if kind == "beir":
            items = convert_beir(source)
        elif kind == "pubmedqa":
            items, corpus = convert_pubmedqa(source, seed=seed)
        elif kind == "sec10q":
            items = convert_sec10q(source, seed=seed)
        else:
            raise ConvertError(f"unknown dataset kind {kind!r}: choose beir, pubmedqa or sec10q")
    except (ConvertError, OSError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    save_eval_set(items, out_file)
    splits: dict[str, int] = {}
    for item in items:
        splits[item.split] = splits.get(item.split, 0) + 1
    err.print(f"wrote {len(items)} questions to {out_file} (splits: {splits})")
    if corpus_out is not None:
        if corpus is None:
            err.print(f"[yellow]note:[/yellow] {kind} documents are already a corpus ragsys index reads; "
                      "--corpus-out ignored")  # fmt: skip
        else:
            write_corpus_jsonl(corpus, corpus_out)
            err.print(f"wrote {len(corpus)} documents to {corpus_out}")


@app.command(name="eval")
def eval_(
    index_dir: IndexOpt,
    eval_set: Annotated[Path, typer.Option("--eval-set", help="eval set JSONL (see README)")],
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
    as_json: JsonOpt = False,
) -> None:
    """Score a pipeline on an eval set: IR metrics, answer metrics, 95% CIs, paired test, HTML report."""
    from ragsys.cli_eval import AnswerOptions, run_eval

    with user_errors():
        if label_rule not in ("constrained", "rule"):
            raise ValueError(f"--label-rule {label_rule!r}: choose constrained or rule")
        opts = AnswerOptions(generate, k, max_new_tokens, label_rule)  # type: ignore[arg-type]
        record = run_eval(
            index_dir, eval_set, split, pipeline, baseline, out_dir, name, limit, seed, err, opts
        )
    _print_eval(record)
    if as_json:
        emit_json({"n": record["n"], "metrics": record["metrics"], "ci95": record["ci95"]})


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


train_app = typer.Typer(no_args_is_help=True, help="Train one component of a pipeline.")
app.add_typer(train_app, name="train")


@train_app.command("mixture")
def train_mixture(
    index_dir: IndexOpt,
    eval_set: Annotated[Path, typer.Option("--eval-set", help="eval set JSONL with a train split")],
    out: Annotated[Path, typer.Option("--out", help="pipeline directory to write")],
    pipeline: PipelineOpt = "pipelines/mixture.py",
) -> None:
    """Fit a learned mixture's fusion weights on a dev split carved from the train questions."""
    from ragsys.assemble import build_search
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.fusion import LearnedMixtureConfig
    from ragsys.index.reader import Index
    from ragsys.train.mixture import fit_learned_mixture

    with user_errors():
        config = load_pipeline(pipeline)
        if not isinstance(config.fusion, LearnedMixtureConfig):
            raise ValueError(
                f"{pipeline}: fusion kind {config.fusion.kind!r} has nothing to fit; use a learned one"
            )
        index = Index.open(index_dir)
        items = EvalSetReader(eval_set).read([config.fusion.fit_split])
        fitted, fit = fit_learned_mixture(
            config, build_search(config, index), items, set(index.manifest.documents)
        )
        out.mkdir(parents=True, exist_ok=True)
        fitted.to_yaml(out / "pipeline.yaml")
    err.print(f"fitted on {fit.n_queries} dev questions: {fit.config.model_dump(mode='json')} "
              f"(dev nDCG@10 {fit.ndcg_at_10:.4f}); saved {out / 'pipeline.yaml'}")  # fmt: skip


def _register_train_commands() -> None:
    from ragsys import cli_train

    train_app.command("retriever")(cli_train.retriever)
    train_app.command("reranker")(cli_train.reranker)
    train_app.command("generator")(cli_train.generator)


def _register_tune_and_serve() -> None:
    from ragsys.cli_serve import serve
    from ragsys.cli_tune import tune

    app.command("tune")(tune)
    app.command("serve")(serve)


_register_tune_and_serve()


def _register_feedback_commands() -> None:
    from ragsys.cli_feedback import feedback_app

    app.add_typer(feedback_app, name="feedback")


_register_feedback_commands()


_register_train_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
