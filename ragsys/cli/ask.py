"""`ragsys ask`: one question, answered by the pipeline with page citations (or an abstention).

The question goes straight to `Pipeline.stream` (retrieval, then the generator); the answer
streams to the terminal as it is decoded, or comes whole as JSON with `--json`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ragsys.cli.console import emit_json, err, out, user_errors
from ragsys.cli.options import FilterOpt, IndexOpt, JsonOpt, PipelineOpt
from ragsys.types import Answer


def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    index_dir: IndexOpt,
    pipeline: PipelineOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="passages retrieved for the generator")] = None,
    filter_: FilterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the index, citing passages as \\[n] with their document and page."""
    from ragsys.index.filters import parse_filters
    from ragsys.index.reader import Index
    from ragsys.jsonshape import answer_json
    from ragsys.pipeline import load_pipeline

    with user_errors():
        filters = parse_filters(filter_ or [])
        config = load_pipeline(pipeline)
        if config.generator is None:
            raise ValueError(f"pipeline {config.name!r} has no generator; use one with `generator=...`")
        rag = config.build(Index.open(index_dir), generator=True)
        if as_json:
            answer = rag.answer(question, k, filters)
        else:
            out.print("[bold]Answer:[/bold] ", end="")
            show = lambda t: out.print(t, end="", highlight=False)  # noqa: E731
            answer = rag.stream(question, k, on_text=show, filters=filters)
            out.print()
    if as_json:
        emit_json(answer_json(answer))
        return
    _print_answer(answer)


def _print_answer(answer: Answer) -> None:
    if answer.abstained:
        out.print("[yellow](abstained: the passages do not answer this)[/yellow]")
    for c in answer.citations:
        out.print(f"  [{c.n}] {c.doc} {_pages(c.page_start, c.page_end)}", highlight=False)
    if not answer.citations and not answer.abstained:
        out.print("[dim](the answer cites no passage)[/dim]")
    out.print("[bold]Passages given to the model:[/bold]")
    for n, h in enumerate(answer.contexts, start=1):
        snippet = " ".join(h.chunk.text.split())[:160]
        pages = _pages(h.chunk.page_start, h.chunk.page_end)
        out.print(f"  [{n}] {h.chunk.doc_id} {pages}: {snippet}", highlight=False)
    t = answer.timings
    err.print(f"[dim]retrieve {t.get('retrieve_s', 0):.2f}s, generate {t.get('generate_s', 0):.2f}s, "
              f"{t.get('tokens_per_s', 0):.1f} tokens/s on {answer.backend}[/dim]")  # fmt: skip


def _pages(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"
