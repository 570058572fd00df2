"""`ragsys train retriever|reranker|generator` end to end on tiny random models (JSON shapes,
refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, save_eval_set
from ragsys.generate.config import GeneratorConfig
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import QUESTIONS, write_corpus


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Path:
    root = tmp_path_factory.mktemp("cli-train")
    corpus = write_corpus(root / "docs")
    index_paths([corpus], root / "index", tiny_pipeline.index_spec(), workers=1)
    items = [
        EvalItem(
            id=f"{n}-{i}",
            question=q,
            split="train",
            answer="twelve kilograms",
            label="yes",
            gold_doc_ids=(str((corpus / n).resolve()),),
        )
        for n, qs in QUESTIONS.items()
        for i, q in enumerate(qs)
    ]
    save_eval_set(items, root / "ev.jsonl")
    return root


def _inputs(setup: Path, tmp_path: Path) -> list[str]:
    """The index, the eval set and the saved pipeline (in `tmp_path / "pipe"`) a command trains from."""
    return [
        "--index",
        str(setup / "index"),
        "--eval-set",
        str(setup / "ev.jsonl"),
        "--pipeline",
        str(tmp_path / "pipe"),
    ]


def _run(args: list[str]) -> dict[str, object]:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return record


def test_train_reranker_checks_on_held_out_questions(
    setup: Path, tiny_pipeline: PipelineConfig, tmp_path: Path
) -> None:
    from tests.fixtures.tiny_models import make_tiny_cross_encoder

    tiny_pipeline.save(tmp_path / "pipe")
    base = make_tiny_cross_encoder(tmp_path / "ce")
    record = _run(
        [
            "train",
            "reranker",
            *_inputs(setup, tmp_path),
            "--base",
            str(base),
            "--out",
            str(tmp_path / "rr"),
            "--dev-fraction",
            "0.34",
            "--ict",
            "3",
            "--json",
        ]
    )
    assert record["checked"] is True and isinstance(record["dev"], dict)
    assert record["dev"]["questions"] == 2  # type: ignore[index]
    saved = PipelineConfig.load(tmp_path / "rr")
    assert (saved.reranker is not None) == record["used"]  # kept only when it helped on dev


def test_train_generator_sft_then_refusals(
    setup: Path, tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path: Path
) -> None:
    gen = GeneratorConfig(model=str(tiny_lm_path), max_new_tokens=48, context_tokens=96)
    tiny_pipeline.model_copy(update={"generator": gen, "top_k": 2}).save(tmp_path / "pipe")
    args = [
        "train",
        "generator",
        *_inputs(setup, tmp_path),
        "--method",
        "sft",
        "--out",
        str(tmp_path / "sft"),
        "--json",
    ]
    record = _run(args)
    assert (
        record["method"] == "sft" and record["examples"] == 6 and record["steps"] == 2
    )  # 6 examples, accum 4
    tuned = PipelineConfig.load(tmp_path / "sft")
    assert tuned.generator is not None and tuned.generator.adapter is not None
    bad = CliRunner().invoke(app, [*args[:-1], "--split", "test"])
    assert bad.exit_code == 2 and "test split" in bad.output
    nothing = CliRunner().invoke(
        app, ["train", "generator", "--index", str(setup / "index"), "--method", "kto"]
    )
    assert nothing.exit_code == 2 and "--eval-set" in nothing.output


def test_cli_train_retriever_with_reindex(built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig,
                                          tmp_path: Path) -> None:  # fmt: skip
    root, items = built
    save_eval_set(items, tmp_path / "ev.jsonl")
    tiny_pipeline.save(tmp_path / "pipe")
    args = ["train", "retriever", "--index", str(root / "index"), "--eval-set", str(tmp_path / "ev.jsonl"),
            "--pipeline", str(tmp_path / "pipe"), "--out", str(tmp_path / "tuned"), "--batch-size", "2",
            "--reindex", str(tmp_path / "index2"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["examples"] == 6 and record["reindex"]["chunks_embedded"] > 0
    tuned = PipelineConfig.load(tmp_path / "tuned")
    index2 = Index.open(tmp_path / "index2")
    assert tuned.build(index2).search("picking arm", 3)  # the copy holds the tuned vectors
    assert Index.open(root / "index").manifest.dense == Index.open(root / "index").manifest.dense  # untouched
    bad = CliRunner().invoke(app, [*args[:-3], "--split", "test"])
    assert bad.exit_code == 2 and "test split" in bad.output
