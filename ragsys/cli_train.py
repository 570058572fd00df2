"""`ragsys train retriever|reranker|generator`: one component of a pipeline learns the domain.

Each command reads the eval set's train split only (never test), trains with a progress
bar, checkpoints, resumes when re-run with the same `--out`, respects `--max-minutes`, and
saves a complete pipeline directory that every other command takes with `--pipeline`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)

IndexOpt = Annotated[Path, typer.Option("--index", help="index directory (read-only here)")]
PipelineOpt = Annotated[
    str | None, typer.Option("--pipeline", help="a pipelines/*.py file or a saved pipeline directory")
]
EvalSetOpt = Annotated[Path, typer.Option("--eval-set", help="eval set JSONL; only --split is read")]
SplitOpt = Annotated[str, typer.Option("--split", help="the split trained on (never the test split)")]
MinutesOpt = Annotated[float | None, typer.Option("--max-minutes", help="stop (and checkpoint) after this")]
SeedOpt = Annotated[int, typer.Option("--seed")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line of stdout")]


@contextmanager
def bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar driven by (done, total) calls."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def counter(label: str, total: int) -> Iterator[Callable[[int], None]]:
    done = 0
    with bar(label) as update:

        def advance(n: int) -> None:
            nonlocal done
            done += n
            update(done, total)

        yield advance


def refuse_test_split(split: str) -> None:
    if split == "test":
        raise ValueError("training on the test split would make every later test number meaningless; "
                         "use --split train")  # fmt: skip


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def retriever(
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: Annotated[Path, typer.Option("--out", help="pipeline directory to write")] = Path("tuned/retriever"),
    split: SplitOpt = "train",
    epochs: Annotated[float, typer.Option(help="passes over the training examples")] = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="learning rate")] = 5e-5,
    batch_size: Annotated[int, typer.Option(help="questions per batch (in-batch negatives)")] = 32,
    negatives: Annotated[int, typer.Option(help="mined hard negatives per question")] = 1,
    max_minutes: MinutesOpt = None,
    seed: SeedOpt = 0,
    reindex: Annotated[
        Path | None,
        typer.Option("--reindex", help="also write a copy of the index embedded with the tuned encoder here"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the dense encoder (MNRL with hard negatives mined from the current index)."""
    from ragsys.assemble import build_search
    from ragsys.cli import user_errors
    from ragsys.evalset import EvalSetReader
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.mining import labelled_examples
    from ragsys.train.retriever import RetrieverTrainConfig, train_retriever

    with user_errors():
        refuse_test_split(split)
        config = load_pipeline(pipeline)
        train = RetrieverTrainConfig(epochs=epochs, learning_rate=lr, batch_size=batch_size,
                                     n_negatives=negatives, seed=seed, max_minutes=max_minutes)  # fmt: skip
        items = EvalSetReader(eval_set).read([split])
        if not items:
            raise ValueError(f"{eval_set}: no questions in split {split!r}")
        index = Index.open(index_dir)
        search = build_search(config, index)
        with counter("mining hard negatives", len(items)) as advance:
            examples = labelled_examples(
                items, index, search, n_negatives=train.n_negatives, depth=train.depth, skip=train.skip,
                seed=seed, on_progress=advance,
            )  # fmt: skip
        with bar("training the encoder") as update:
            result = train_retriever(config, train, examples, out=out, progress=update)
        result.pipeline.save(out)
        early = " (stopped by --max-minutes; re-run to resume)" if result.stopped_early else ""
        err.print(f"trained on {result.examples} examples ({result.dropped} dropped), {result.steps} steps, "
                  f"{result.minutes} min{early}; saved {out}")  # fmt: skip
        summary = None
        if reindex is not None:
            from ragsys.cli_progress import RichReporter
            from ragsys.index.copy import copy_for_pipeline

            with RichReporter(err) as reporter:
                summary = copy_for_pipeline(index_dir, reindex, result.pipeline, reporter)
            err.print(f"index for the tuned pipeline: {reindex}")
        else:
            err.print("its vectors differ from this index's: pass --reindex NEW_DIR, or run "
                      f"`ragsys index SOURCES --index NEW_DIR --pipeline {out}`")  # fmt: skip
    if as_json:
        emit_json({**result.model_dump(mode="json", exclude={"pipeline"}), "pipeline_dir": str(out),
                   "reindex": summary.cli_json() if summary is not None else None})  # fmt: skip
