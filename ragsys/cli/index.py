"""`ragsys index`, `ragsys search` and `ragsys inspect`: build an index, search it, see what it holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ragsys.cli.console import Bars, emit_json, err, out, user_errors
from ragsys.cli.options import FilterOpt, IndexOpt, JsonOpt, PipelineOpt

if TYPE_CHECKING:
    from ragsys.extract import ExtractorConfig
    from ragsys.index.executor import Executor
    from ragsys.index.summary import IndexSummary


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
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="extract, chunk, embed on Ray: --ray alone starts a local instance; "
            "--ray auto, --ray ray://HOST:10001 or --ray HOST:PORT joins a cluster",
        ),
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="the cluster --ray ADDRESS names (the same as --ray ADDRESS)")
    ] = None,
    ray_shared_path: Annotated[
        Path | None, typer.Option(help="files under this folder are at the same path on every Ray node")
    ] = None,
) -> None:
    """Extract, chunk, embed and store documents; incremental, atomic and resumable."""
    from ragsys.index.build import index_paths
    from ragsys.pipeline import load_pipeline

    with user_errors(), Bars() as bars, _executor(ray, ray_address, ray_shared_path) as executor:
        spec = load_pipeline(pipeline).index_spec()
        if extractor is not None:
            spec = spec.model_copy(update={"extractor": _extractor_config(extractor)})
        summary = index_paths(
            paths, index_dir, spec, passwords=password or (), workers=workers, reporter=bars,
            executor=executor,
        )  # fmt: skip
    _print_index_summary(summary)
    if as_json:
        emit_json(summary.cli_json())
    if summary.files_indexed == 0 or (strict and summary.files_failed):
        raise typer.Exit(1)


@contextmanager
def _executor(ray: bool, address: str | None, shared_path: Path | None) -> Iterator[Executor | None]:
    """None (local processes) unless --ray or --ray-address; Ray is imported only then."""
    if not ray and address is None:
        if shared_path is not None:
            raise ValueError("--ray-shared-path applies to Ray runs: add --ray or --ray-address")
        yield None
        return
    from ragsys.distributed import RayExecutor, RayOptions, parse_address

    options = RayOptions(address=parse_address(address or "local"), shared_path=shared_path)
    with RayExecutor(options) as executor:
        yield executor


def _extractor_config(name: str) -> ExtractorConfig:
    from ragsys.extract import PdfExtractorConfig, UnstructuredExtractorConfig

    if name == "pymupdf":
        return PdfExtractorConfig()
    if name == "unstructured":
        return UnstructuredExtractorConfig()
    raise ValueError(f"--extractor {name!r}: choose pymupdf or unstructured")


def _fields(manifest: Any) -> dict[str, list[str]]:
    """Each metadata field and its distinct values over the documents (the table view)."""
    values: dict[str, set[str]] = {}
    for entry in manifest.documents.values():
        for key, value in entry.meta.items():
            if key not in ("file", "title"):
                values.setdefault(key, set()).add(value)
    return {k: sorted(v)[:20] for k, v in sorted(values.items())}


def _print_index_summary(summary: IndexSummary) -> None:
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


def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    index_dir: IndexOpt,
    k: Annotated[int, typer.Option("-k", help="number of hits")] = 10,
    pipeline: PipelineOpt = None,
    filter_: FilterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieve the best passages for a query (no generation)."""
    from ragsys.index.filters import parse_filters
    from ragsys.index.reader import Index
    from ragsys.jsonshape import hit_json
    from ragsys.pipeline import load_pipeline

    with user_errors():
        filters = parse_filters(filter_ or [])
        hits = load_pipeline(pipeline).build(Index.open(index_dir)).search(query, k, filters)
    if as_json:
        emit_json({"hits": [hit_json(h) for h in hits]})
        return
    for rank, h in enumerate(hits, start=1):
        c = h.chunk
        pages = f"p.{c.page_start}" + (f"-{c.page_end}" if c.page_end != c.page_start else "")
        out.print(f"[bold]{rank:>2}.[/bold] {h.chunk.doc_id} {pages}  [dim]score {h.score:.4f}[/dim]")
        out.print(f"    {' '.join(h.chunk.text.split())[:300]}", highlight=False)


def _card(config: Any) -> dict[str, object] | None:
    from ragsys.models import adapter_card

    adapter = config.generator.adapter if config.generator is not None else None
    return adapter_card(adapter) if adapter else None


def inspect(
    index_dir: Annotated[Path, typer.Argument(help="index directory")],
    pipeline: PipelineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What an index holds, which models built it, and whether a reranker is trained."""
    from ragsys.encoders.backend import resolve_backend
    from ragsys.index.manifest import read_manifest
    from ragsys.pipeline import load_pipeline
    from ragsys.retrieve.dense import DenseConfig

    with user_errors():
        m = read_manifest(index_dir)
        config = load_pipeline(pipeline)
    reranker = (
        f"{config.reranker.model} (top {config.reranker.top_n}, {resolve_backend(config.reranker.backend)})"
        if config.reranker is not None
        else "none: no pretrained cross-encoder ships offline; train one with `ragsys train reranker`"
    )
    info = {
        "generation": m.generation, "created": m.created, "documents": len(m.documents), "pages": m.pages,
        "chunks": m.chunks, "chunking": m.chunking, "extractor": m.extractor,
        "bm25": [r.tokenizer for r in m.sparse],
        "dense": [{"model": r.model, "dim": r.dim, "index": r.index_kind, "fingerprint": r.fingerprint,
                   "backend": r.backend} for r in m.dense],
        "pipeline": config.name, "reranker": reranker,
        "metadata": {d: e.meta for d, e in sorted(m.documents.items())} if as_json else _fields(m),
        "encoders": [{"model": r.model, "passages": resolve_backend(r.backend),
                      "queries": resolve_backend(r.query_backend)}
                     for r in config.retrievers if isinstance(r, DenseConfig)],
        "generator": None if config.generator is None else {
            "model": config.generator.model, "adapter": config.generator.adapter,
            "backend": config.generator.resolved_backend(),
            **({"adapter_trained_on": card.get("trained_on")} if (card := _card(config)) else {})},
    }  # fmt: skip
    if as_json:
        emit_json(info)
        return
    t = Table(title=str(index_dir), show_header=False)
    for key, value in info.items():
        t.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    out.print(t)
