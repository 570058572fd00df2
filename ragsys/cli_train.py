"""`ragsys train retriever|reranker|generator`: one component of a pipeline learns the domain.

Each command reads the eval set's train split only (never test), trains with a progress
bar, checkpoints, resumes when re-run with the same `--out`, respects `--max-minutes`, and
saves a complete pipeline directory that every other command takes with `--pipeline`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ragsys.cli_common import LineThrottle, emit_json, err
from ragsys.eval.split import refuse_test_split

if TYPE_CHECKING:
    from ragsys.pipeline import PipelineConfig

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
    """A rich progress bar driven by (done, total) calls; when stderr is not a terminal (a log
    file), a plain line every minute instead, so long runs can be followed with `tail`."""
    if not err.is_terminal:
        throttle = LineThrottle()

        def log_line(done: int, total: int) -> None:
            if throttle.due(label, done, total):
                err.print(f"{label}: {done}/{total} ({time.strftime('%H:%M:%S')})", highlight=False)

        yield log_line
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def phases(prefix: str) -> Iterator[Callable[[str, int, int], None]]:
    """One bar (or one log line a minute) per phase: (phase, done, total) calls."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=not err.is_terminal,
    ) as progress:  # fmt: skip
        tasks: dict[str, TaskID] = {}
        throttle = LineThrottle()

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(f"{prefix} {phase}", total=total)
            progress.update(tasks[phase], completed=done, total=total)
            if not err.is_terminal and throttle.due(phase, done, total):
                err.print(f"{prefix} {phase}: {done}/{total} ({time.strftime('%H:%M:%S')})", highlight=False)

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


def renamed(config: PipelineConfig, suffix: str) -> PipelineConfig:
    """A trained pipeline gets its own name, so its eval reports never overwrite the base's."""
    name = config.name if config.name.endswith(f"-{suffix}") else f"{config.name}-{suffix}"
    return config.model_copy(update={"name": name})


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
    from ragsys.cli_common import user_errors
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.mining.hard_negatives import labelled_examples
    from ragsys.train.retriever import RetrieverTrainConfig, train_retriever

    with user_errors():
        refuse_test_split(split)
        config = load_pipeline(pipeline)
        train = RetrieverTrainConfig(
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,
            n_negatives=negatives,
            seed=seed,
            max_minutes=max_minutes,
        )
        items = EvalSetReader(eval_set).read([split])
        if not items:
            raise ValueError(f"{eval_set}: no questions in split {split!r}")
        index = Index.open(index_dir)
        search = build_search(config, index)
        with counter("mining hard negatives", len(items)) as advance:
            examples = labelled_examples(
                items,
                index,
                search,
                n_negatives=train.n_negatives,
                depth=train.depth,
                skip=train.skip,
                seed=seed,
                on_progress=advance,
            )
        with bar("training the encoder") as update:
            result = train_retriever(config, train, examples, out=out, progress=update)
        renamed(result.pipeline, "tuned-retriever").save(out)
        early = " (stopped by --max-minutes; re-run to resume)" if result.stopped_early else ""
        err.print(
            f"trained on {result.examples} examples ({result.dropped} dropped), {result.steps} steps, "
            f"{result.minutes} min{early}; saved {out}"
        )
        summary = None
        if reindex is not None:
            from ragsys.cli_progress import RichReporter
            from ragsys.index.copy import copy_for_pipeline

            with RichReporter(err) as reporter:
                summary = copy_for_pipeline(index_dir, reindex, result.pipeline, reporter)
            err.print(f"index for the tuned pipeline: {reindex}")
        else:
            err.print(
                "its vectors differ from this index's: pass --reindex NEW_DIR, or run "
                f"`ragsys index SOURCES --index NEW_DIR --pipeline {out}`"
            )
    if as_json:
        emit_json(
            {
                **result.model_dump(mode="json", exclude={"pipeline"}),
                "pipeline_dir": str(out),
                "reindex": summary.cli_json() if summary is not None else None,
            }
        )


def reranker(
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: Annotated[Path, typer.Option("--out", help="pipeline directory to write")] = Path("tuned/reranker"),
    split: SplitOpt = "train",
    base: Annotated[
        str, typer.Option("--base", help="starting checkpoint: minilm or any cross-encoder")
    ] = "minilm",
    loss: Annotated[str, typer.Option(help="listwise or bce")] = "listwise",
    epochs: Annotated[float, typer.Option()] = 2.0,
    lr: Annotated[float, typer.Option("--lr")] = 3e-5,
    negatives: Annotated[int, typer.Option(help="mined hard negatives per question")] = 3,
    top_n: Annotated[int, typer.Option("--top-n", help="candidates the reranker rescores")] = 20,
    max_length: Annotated[int, typer.Option(help="tokens of question + passage read")] = 256,
    dev_fraction: Annotated[float, typer.Option(help="train questions held out to check the reranker")] = 0.2,
    synthetic: Annotated[int, typer.Option(help="also write synthetic questions for this many chunks")] = 0,
    ict: Annotated[int, typer.Option(help="also train on this many inverse-cloze pseudo-queries (free)")] = 0,
    batch_size: Annotated[int, typer.Option(help="questions per forward pass (memory grows with it)")] = 16,
    grad_accum: Annotated[int, typer.Option(help="batches per optimizer step (8 x 2: the steps of 16)")] = 1,
    max_minutes: MinutesOpt = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train a cross-encoder on hard negatives from the pipeline's own retrieval; keep it only if
    it beats the retrieval order on held-out train questions (with a fitted interpolation)."""
    from ragsys.assemble import build_search
    from ragsys.cli_common import user_errors
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.eval.split import split_train_dev
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.mining.hard_negatives import examples_for_pairs, labelled_examples
    from ragsys.train.reranker import RerankerTrainConfig, train_reranker

    with user_errors():
        refuse_test_split(split)
        config = load_pipeline(pipeline).model_copy(update={"reranker": None})
        train = RerankerTrainConfig(
            model=base,
            loss=loss,
            epochs=epochs,
            learning_rate=lr,
            n_negatives=negatives,  # type: ignore[arg-type]
            top_n=top_n,
            max_length=max_length,
            batch_size=batch_size,
            grad_accum=grad_accum,
            seed=seed,
            max_minutes=max_minutes,
        )
        items = [it for it in EvalSetReader(eval_set).read([split]) if it.gold_doc_ids or it.gold_chunk_ids]
        if len(items) < 4:
            raise ValueError(f"{eval_set}: {len(items)} questions with gold documents in {split!r}; need 4+")
        parts = split_train_dev(items, dev_fraction, seed)
        index = Index.open(index_dir)
        search = build_search(config, index)
        with counter("mining hard negatives", len(parts.train)) as advance:
            examples = labelled_examples(
                parts.train, index, search, n_negatives=negatives, depth=top_n, seed=seed, on_progress=advance
            )
        if synthetic:
            examples += examples_for_pairs(
                _synthetic(index, search, synthetic, seed, out), search, n_negatives=negatives, depth=top_n
            )
        if ict:
            from ragsys.train.mining.ict import ict_pairs

            pairs = ict_pairs(index, ict, seed)
            with counter("mining negatives for pseudo-queries", len(pairs)) as advance:
                examples += examples_for_pairs(
                    pairs, search, n_negatives=negatives, depth=top_n, on_progress=advance
                )
        with bar("training the reranker") as update, bar("checking it on dev") as dev_update:
            result = train_reranker(
                config, train, examples, out=out, dev=parts.dev, search=search, progress=update,
                dev_progress=dev_update,
            )  # fmt: skip
        renamed(result.pipeline, "tuned-reranker").save(out)
    if result.dev is not None:
        verdict = (
            f"kept with interpolation {result.interpolate}"
            if result.used
            else "NOT used: it did not beat the retrieval order"
        )
        err.print(
            f"dev nDCG@10 ({result.dev.questions} questions): retrieval {result.dev.without:.4f}, "
            f"reranked {result.dev.with_best or float('nan'):.4f}; {verdict}"
        )
    err.print(f"{result.examples} examples, {result.steps} steps, {result.minutes} min; saved {out}")
    if as_json:
        emit_json({**result.model_dump(mode="json", exclude={"pipeline"}), "pipeline_dir": str(out)})


def _synthetic(index: Any, search: Any, n_chunks: int, seed: int, out: Path) -> list[Any]:
    """Synthetic (question, chunk) pairs, written once into `out/synthetic.jsonl` and reused."""
    from ragsys.train.mining.synthetic import SyntheticConfig, load_pairs, save_pairs, synthetic_pairs

    cache = out / "synthetic.jsonl"
    if cache.exists():
        return list(load_pairs(cache, index))
    with bar("synthetic questions") as update:
        result = synthetic_pairs(
            index, search, SyntheticConfig(n_chunks=n_chunks, seed=seed), progress=update
        )
    out.mkdir(parents=True, exist_ok=True)
    save_pairs(cache, result.pairs)
    err.print(
        f"synthetic questions: {result.generated} written, {result.well_formed} well formed, "
        f"{result.kept} kept by the round trip"
    )
    return list(result.pairs)


def generator(
    index_dir: IndexOpt,
    eval_set: Annotated[Path | None, typer.Option("--eval-set", help="questions with answers/labels")] = None,
    pipeline: PipelineOpt = None,
    feedback: Annotated[
        Path | None, typer.Option("--feedback", help="feedback store (thumbs, revisions)")
    ] = None,
    method: Annotated[str, typer.Option(help="sft, dpo, kto, apo-zero, apo-down or clair")] = "sft",
    out: Annotated[Path, typer.Option("--out", help="pipeline directory to write")] = Path("tuned/generator"),
    split: SplitOpt = "train",
    epochs: Annotated[int, typer.Option()] = 1,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    batch_size: Annotated[int, typer.Option()] = 1,
    grad_accum: Annotated[int, typer.Option(help="batches per optimizer step")] = 4,
    checkpointing: Annotated[
        bool,
        typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="trade compute for memory"),
    ] = True,
    beta: Annotated[
        float, typer.Option(help="preference methods: strength of the tie to the reference")
    ] = 0.1,
    k: Annotated[int | None, typer.Option("-k", help="passages retrieved per question")] = None,
    limit: Annotated[int | None, typer.Option(help="use only the first N questions of the split")] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(help="kto/clair: length of the model's own answers (default: the generator's)"),
    ] = None,
    reviser: Annotated[str | None, typer.Option(help="clair: a stronger model that revises answers")] = None,
    balance_labels: Annotated[
        bool,
        typer.Option(
            "--balance-labels/--no-balance-labels",
            help="sft: draw each yes/no/maybe label equally often (skewed labels can collapse to one)",
        ),
    ] = False,
    max_minutes: MinutesOpt = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """LoRA-tune the generator: SFT on retrieved contexts, KTO from thumbs (feedback, or the eval
    set's labels), DPO/APO from preference pairs, CLAIR from revisions."""
    from ragsys.cli_common import user_errors
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.generator.config import GeneratorTrainConfig
    from ragsys.train.generator.trainer import train_generator
    from ragsys.train.merge import stack_on_adapter

    with user_errors():
        refuse_test_split(split)
        if eval_set is None and feedback is None:
            raise ValueError("give --eval-set (answers, labels) and/or --feedback (thumbs, revisions)")
        items = EvalSetReader(eval_set).read([split]) if eval_set is not None else []
        items = items[:limit] if limit else items
        train = GeneratorTrainConfig(
            method=method,
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,  # type: ignore[arg-type]
            grad_accum=grad_accum,
            gradient_checkpointing=checkpointing,
            max_new_tokens=max_new_tokens,
            beta=beta,
            k=k,
            reviser=reviser,
            balance_labels=balance_labels,
            seed=seed,
            max_minutes=max_minutes,
        )
        config = stack_on_adapter(load_pipeline(pipeline), out / "base")
        with phases(method) as update:
            result = train_generator(
                config,
                train,
                index=Index.open(index_dir),
                items=items,
                feedback=feedback,
                out=out / "train",
                progress=lambda p: update(p.phase, p.done, p.total),
            )
        renamed(result.pipeline, method).save(out)
    early = " (stopped by --max-minutes; re-run to resume)" if result.stopped_early else ""
    err.print(
        f"{method}: {result.examples} examples ({result.dropped_too_long} too long), {result.steps} steps, "
        f"epoch losses {[round(x, 4) for x in result.epoch_losses]}, {result.minutes:.1f} min{early}; "
        f"saved {out}"
    )
    if as_json:
        emit_json({**result.model_dump(mode="json", exclude={"pipeline"}), "pipeline_dir": str(out)})
