"""`ragsys train retriever|reranker|generator|mixture`: one component of a pipeline learns the domain.

Each command reads the eval set's train split only (never test), trains with a progress
bar, checkpoints, resumes when re-run with the same `--out`, respects `--max-minutes`, and
saves a complete pipeline directory that every other command takes with `--pipeline`.
Training options are the `…TrainConfig` fields (`FLAGS` below name their flags); where a
command's default differs from the config's, the flag says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragsys.cli.console import Bars, emit_json, err, user_errors
from ragsys.cli.options import (
    EvalSetOpt,
    FeedbackOpt,
    Flag,
    IndexOpt,
    JsonOpt,
    PipelineOpt,
    SplitOpt,
    config_options,
)
from ragsys.train.abstention import AbstentionTrainConfig
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.labels import LabelTrainConfig
from ragsys.train.reranker.config import RerankerTrainConfig
from ragsys.train.retriever import RetrieverTrainConfig

if TYPE_CHECKING:
    from ragsys.eval.evalset import EvalItem
    from ragsys.index.reader import Index
    from ragsys.pipeline import PipelineConfig
    from ragsys.train.mining.recipe import Pairs

OutOpt = Annotated[Path, typer.Option("--out", help="pipeline directory to write")]
MINUTES, SEED = Flag("--max-minutes", "stop (and checkpoint) after this"), Flag("--seed")
BF16 = Flag("--bf16/--no-bf16", "bf16 autocast where the CPU has AVX-512 BF16 or AMX (fp32 elsewhere)")

RETRIEVER_FLAGS = {
    "epochs": Flag("--epochs", "passes over the training examples"),
    "learning_rate": Flag("--lr", "learning rate"),
    "batch_size": Flag("--batch-size", "questions per batch (in-batch negatives)"),
    "n_negatives": Flag("--negatives"),
    "max_minutes": MINUTES,
    "seed": SEED,
    "bf16": BF16,
}
# The command's defaults for a first run on a small labelled set: 2 epochs, 3 negatives among
# the top 20 (RerankerTrainConfig's 3 epochs over 7 of the top 50 suit synthetic data).
RERANKER_FLAGS = {
    "model": Flag("--base", "starting checkpoint: minilm or any cross-encoder"),
    "loss": Flag("--loss", "listwise or bce"),
    "epochs": Flag("--epochs", default=2.0),
    "learning_rate": Flag("--lr"),
    "n_negatives": Flag("--negatives", default=3),
    "top_n": Flag("--top-n", default=20),
    "max_length": Flag("--max-length", "tokens of question + passage read"),
    "batch_size": Flag("--batch-size", "questions per forward pass (memory grows with it)"),
    "grad_accum": Flag("--grad-accum", "batches per optimizer step (8 x 2: the steps of 16)"),
    "max_minutes": MINUTES,
    "seed": SEED,
    "bf16": BF16,
}
# Batch 1 x 4 accumulated, with gradient checkpointing: long RAG prompts at batch 4 need
# several GB more than a laptop has (GeneratorTrainConfig's defaults suit short examples).
GENERATOR_FLAGS = {
    "method": Flag("--method", "sft, dpo, kto, apo-zero, apo-down or clair"),
    "epochs": Flag("--epochs"),
    "learning_rate": Flag("--lr"),
    "batch_size": Flag("--batch-size", default=1),
    "grad_accum": Flag("--grad-accum", "batches per optimizer step", default=4),
    "gradient_checkpointing": Flag(
        "--gradient-checkpointing/--no-gradient-checkpointing", "trade compute for memory", default=True
    ),
    "beta": Flag("--beta", "preference methods: strength of the tie to the reference"),
    "k": Flag("-k", "passages retrieved per question"),
    "max_new_tokens": Flag("--max-new-tokens", "kto/clair: own answers' length (default: the generator's)"),
    "reviser": Flag("--reviser", "clair: a stronger model that revises answers"),
    "feedback_version": Flag("--feedback-version"),  # its help is the field's description
    "balance_labels": Flag(
        "--balance-labels/--no-balance-labels",
        "sft: draw each yes/no/maybe label equally often (skewed labels can collapse to one)",
    ),
    "max_minutes": MINUTES,
    "seed": SEED,
    "bf16": BF16,
}

train_app = typer.Typer(no_args_is_help=True, help="Train one component of a pipeline.")


def renamed(config: PipelineConfig, suffix: str) -> PipelineConfig:
    """A trained pipeline gets its own name, so its eval reports never overwrite the base's."""
    name = config.name if config.name.endswith(f"-{suffix}") else f"{config.name}-{suffix}"
    return config.model_copy(update={"name": name})


def _main_process() -> bool:  # under `accelerate launch`, only the main process writes and reports
    from ragsys.train.parallel import current_world

    return current_world().main


def _inputs(
    pipeline: str | None, eval_set: Path, split: str, index_dir: Path
) -> tuple[PipelineConfig, list[EvalItem], Index]:
    """The pipeline, the split's questions (never test) and the opened index."""
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.eval.split import refuse_test_split
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline

    refuse_test_split(split)
    config = load_pipeline(pipeline)
    items = EvalSetReader(eval_set).read([split])
    if not items:
        raise ValueError(f"{eval_set}: no questions in split {split!r}")
    return config, items, Index.open(index_dir)


@train_app.command("retriever")
@config_options(RetrieverTrainConfig, RETRIEVER_FLAGS)
def retriever(
    train: RetrieverTrainConfig,
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: OutOpt = Path("tuned/retriever"),
    split: SplitOpt = "train",
    reindex: Annotated[
        Path | None,
        typer.Option("--reindex", help="also write a copy of the index embedded with the tuned encoder here"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the dense encoder (MNRL with hard negatives mined from the current index)."""
    from ragsys.train.mining.recipe import retriever_recipe

    with user_errors(), Bars() as bars:
        config, items, index = _inputs(pipeline, eval_set, split, index_dir)
        run = retriever_recipe(config, train, items, index, out, progress=bars, log=bars.log, reindex=reindex)
        if not _main_process():
            return
        renamed(run.result.pipeline, "tuned-retriever").save(out)
    result = run.result
    early = " (stopped by --max-minutes; re-run to resume)" if result.stopped_early else ""
    err.print(f"trained on {result.examples} examples ({result.dropped} dropped), {result.steps} steps, "
              f"{result.minutes} min{early}; saved {out}")  # fmt: skip
    if reindex is not None:
        err.print(f"index for the tuned pipeline: {reindex}")
    else:
        err.print("its vectors differ from this index's: pass --reindex NEW_DIR, or run "
                  f"`ragsys index SOURCES --index NEW_DIR --pipeline {out}`")  # fmt: skip
    if as_json:
        reindexed = run.reindexed.cli_json() if run.reindexed is not None else None
        emit_json({**_record(result, out), "reindex": reindexed})


@train_app.command("reranker")
@config_options(RerankerTrainConfig, RERANKER_FLAGS)
def reranker(
    train: RerankerTrainConfig,
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: OutOpt = Path("tuned/reranker"),
    split: SplitOpt = "train",
    dev_fraction: Annotated[float, typer.Option(help="train questions held out to check the reranker")] = 0.2,
    synthetic: Annotated[int, typer.Option(help="also write synthetic questions for this many chunks")] = 0,
    ict: Annotated[int, typer.Option(help="also train on this many inverse-cloze pseudo-queries (free)")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train a cross-encoder on hard negatives from the pipeline's own retrieval; keep it only if
    it beats the retrieval order on held-out train questions (with a fitted interpolation)."""
    from ragsys.eval.split import split_train_dev
    from ragsys.train.mining.ict import ict_pairs
    from ragsys.train.mining.recipe import reranker_recipe

    with user_errors(), Bars() as bars:
        config, items, index = _inputs(pipeline, eval_set, split, index_dir)
        items = [it for it in items if it.gold_doc_ids or it.gold_chunk_ids]
        if len(items) < 4:
            raise ValueError(f"{eval_set}: {len(items)} questions with gold documents in {split!r}; need 4+")
        parts = split_train_dev(items, dev_fraction, train.seed)
        pairs: list[tuple[str, Pairs]] = []
        if synthetic:
            pairs.append(("synthetic questions", _synthetic(config, index, synthetic, train.seed, out, bars)))
        if ict:
            pairs.append(("pseudo-queries", ict_pairs(index, ict, train.seed)))
        result = reranker_recipe(
            config, train, parts.train, parts.dev, index, out, progress=bars, pairs=pairs
        )
        if not _main_process():
            return
        renamed(result.pipeline, "tuned-reranker").save(out)
    if result.dev is not None:
        verdict = (f"kept with interpolation {result.interpolate}" if result.used
                   else "NOT used: it did not beat the retrieval order")  # fmt: skip
        err.print(f"dev nDCG@10 ({result.dev.questions} questions): retrieval {result.dev.without:.4f}, "
                  f"reranked {result.dev.with_best or float('nan'):.4f}; {verdict}")  # fmt: skip
    err.print(f"{result.examples} examples, {result.steps} steps, {result.minutes} min; saved {out}")
    if as_json:
        emit_json(_record(result, out))


def _synthetic(
    config: PipelineConfig, index: Index, n_chunks: int, seed: int, out: Path, bars: Bars
) -> Pairs:
    """Synthetic (question, chunk) pairs, written once into `out/synthetic.jsonl` and reused."""
    from ragsys.train.mining.synthetic import SyntheticConfig, cached_pairs

    pairs, result = cached_pairs(
        out / "synthetic.jsonl", index, lambda: config.model_copy(update={"reranker": None}).build(index),
        SyntheticConfig(n_chunks=n_chunks, seed=seed),
        progress=lambda done, total: bars("synthetic questions", done, total),
    )  # fmt: skip
    if result is not None:
        err.print(f"synthetic questions: {result.generated} written, {result.well_formed} well formed, "
                  f"{result.kept} kept by the round trip")  # fmt: skip
    return pairs


@train_app.command("generator")
@config_options(GeneratorTrainConfig, GENERATOR_FLAGS)
def generator(
    train: GeneratorTrainConfig,
    index_dir: IndexOpt,
    eval_set: Annotated[Path | None, typer.Option("--eval-set", help="questions with answers/labels")] = None,
    pipeline: PipelineOpt = None,
    feedback: FeedbackOpt = None,
    out: OutOpt = Path("tuned/generator"),
    split: SplitOpt = "train",
    limit: Annotated[int | None, typer.Option(help="use only the first N questions of the split")] = None,
    as_json: JsonOpt = False,
) -> None:
    """LoRA-tune the generator: SFT on retrieved contexts, KTO from thumbs (feedback, or the eval
    set's labels), DPO/APO from preference pairs, CLAIR from revisions."""
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.eval.split import refuse_test_split
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.generator.trainer import train_generator
    from ragsys.train.merge import stack_on_adapter

    with user_errors(), Bars() as bars:
        refuse_test_split(split)
        if eval_set is None and feedback is None:
            raise ValueError("give --eval-set (answers, labels) and/or --feedback (thumbs, revisions)")
        items = EvalSetReader(eval_set).read([split]) if eval_set is not None else []
        loaded = load_pipeline(pipeline)  # feedback was recorded against its version, not the merged one's
        result = train_generator(
            stack_on_adapter(loaded, out / "base"), train.for_feedback_of(loaded), feedback=feedback,
            index=Index.open(index_dir), items=items[: limit or None], out=out / "train",
            progress=lambda p: bars(f"{train.method} {p.phase}", p.done, p.total),
        )  # fmt: skip
        if not _main_process():
            return
        renamed(result.pipeline, train.method).save(out)
    early = " (stopped by --max-minutes; re-run to resume)" if result.stopped_early else ""
    losses = [round(x, 4) for x in result.epoch_losses]
    err.print(f"{train.method}: {result.examples} examples ({result.dropped_too_long} too long), "
              f"{result.steps} steps, epoch losses {losses}, {result.minutes:.1f} min{early}; "
              f"saved {out}")  # fmt: skip
    if as_json:
        emit_json(_record(result, out))


@train_app.command("mixture")
def mixture(
    index_dir: IndexOpt,
    eval_set: Annotated[Path, typer.Option("--eval-set", help="eval set JSONL with a train split")],
    out: Annotated[Path, typer.Option("--out", help="pipeline directory to write")],
    pipeline: PipelineOpt = "pipelines/mixture.py",
) -> None:
    """Fit a learned mixture's fusion weights on a dev split carved from the train questions."""
    from ragsys.eval.evalset import EvalSetReader
    from ragsys.fusion import LearnedMixtureConfig
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.train.mixture import fit_learned_mixture

    with user_errors():
        config = load_pipeline(pipeline)
        if not isinstance(config.fusion, LearnedMixtureConfig):
            raise ValueError(
                f"{pipeline}: fusion kind {config.fusion.kind!r} has nothing to fit; use a learned one"
            )
        index = Index.open(index_dir)
        items = EvalSetReader(eval_set).read([config.fusion.fit_split])
        fitted, fit = fit_learned_mixture(config, config.build(index), items, set(index.manifest.documents))
        out.mkdir(parents=True, exist_ok=True)
        fitted.to_yaml(out / "pipeline.yaml")
    err.print(f"fitted on {fit.n_queries} dev questions: {fit.config.model_dump(mode='json')} "
              f"(dev nDCG@10 {fit.ndcg_at_10:.4f}); saved {out / 'pipeline.yaml'}")  # fmt: skip


def _record(result: object, out: Path) -> dict[str, object]:
    """A train result as `--json` prints it: everything but the pipeline, plus where it went."""
    from pydantic import BaseModel

    assert isinstance(result, BaseModel)
    return {**result.model_dump(mode="json", exclude={"pipeline"}), "pipeline_dir": str(out)}


ABSTENTION_FLAGS = {
    "max_answerable": Flag("--max-answerable", "abstention allowed on answerable train questions"),
    "dev_fraction": Flag("--dev-fraction", "train questions held out to check the threshold"),
    "k": Flag("-k", "passages per question (default: the pipeline's top_k)"),
    "limit": Flag("--limit", "at most this many train questions"),
    "seed": SEED,
}


@train_app.command("abstention")
@config_options(AbstentionTrainConfig, ABSTENTION_FLAGS)
def abstention(
    train: AbstentionTrainConfig,
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: OutOpt = Path("tuned/refusal"),
    split: SplitOpt = "train",
    as_json: JsonOpt = False,
) -> None:
    """Calibrate grounded refusal: the generator's likelihood of abstaining, thresholded so it
    abstains on train questions whose gold documents are out of reach and rarely on the others."""
    from ragsys.train.abstention import train_abstention

    with user_errors(), Bars() as bars:
        config, items, index = _inputs(pipeline, eval_set, split, index_dir)
        result = train_abstention(
            config,
            train,
            items,
            index=index,
            out=out,
            progress=lambda done, total: bars("score", done, total),
        )
    on_train = f"{result.train_unanswerable_abstained:.0%} / {result.train_answerable_abstained:.0%}"
    on_dev = f"{result.dev_unanswerable_abstained} / {result.dev_answerable_abstained}"
    err.print(
        f"threshold {result.threshold:.4f} on {result.questions} questions; abstains on unanswerable / "
        f"answerable: train {on_train}, dev {on_dev}; saved {out}"
    )
    if as_json:
        emit_json(result.model_dump(mode="json"))


LABEL_FLAGS = {
    "dev_fraction": Flag("--dev-fraction", "train questions held out to check the offsets"),
    "k": Flag("-k", "passages per question (default: the pipeline's top_k)"),
    "limit": Flag("--limit", "at most this many labelled train questions"),
    "seed": SEED,
}


@train_app.command("labels")
@config_options(LabelTrainConfig, LABEL_FLAGS)
def labels(
    train: LabelTrainConfig,
    index_dir: IndexOpt,
    eval_set: EvalSetOpt,
    pipeline: PipelineOpt = None,
    out: OutOpt = Path("tuned/labels"),
    split: SplitOpt = "train",
    as_json: JsonOpt = False,
) -> None:
    """Calibrate the constrained yes/no/maybe step: per-label offsets fitted on the pipeline's
    answers to labelled train questions, to maximize label macro-F1 (checked on a dev fraction)."""
    from ragsys.train.labels import train_labels

    with user_errors(), Bars() as bars:
        config, items, index = _inputs(pipeline, eval_set, split, index_dir)
        result = train_labels(
            config,
            train,
            items,
            index=index,
            out=out,
            progress=lambda done, total: bars("answer", done, total),
        )
    offsets = ", ".join(f"{o} {b:+.3f}" for o, b in result.bias)
    dev = (
        f"dev macro-F1 {result.dev_macro_f1_before:.3f} -> {result.dev_macro_f1_after:.3f} "
        f"({result.dev_questions} questions; labels {result.dev_counts_before} -> {result.dev_counts_after})"
        if result.dev_macro_f1_after is not None
        else "no dev questions held out"
    )
    err.print(
        f"offsets {offsets} on {result.questions} questions; fit macro-F1 "
        f"{result.fit_macro_f1_before:.3f} -> {result.fit_macro_f1_after:.3f}; {dev}; saved {out}"
    )
    if as_json:
        emit_json(result.model_dump(mode="json"))
