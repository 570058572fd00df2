"""Hard-negative mining, dense-encoder training (tiny BERT), the re-embedded index copy and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.eval.evalset import EvalItem, save_eval_set
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.dense import DenseConfig
from ragsys.train.examples import TrainExample
from ragsys.train.mining.hard_negatives import labelled_examples, near_duplicate, pick_negatives
from ragsys.train.retriever import RetrieverTrainConfig, train_retriever, training_columns
from tests.corpus import write_corpus
from tests.factories import make_chunk, make_hit

QUESTIONS = {
    "robots.md": ["How much does the picking arm lift?", "When do harmonic drives need grease?"],
    "fruit.md": ["How many strawberries per hour?", "What ruined the harvest?"],
    "notes.txt": ["How much did revenue rise?", "Why did gross margin improve?"],
}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig
) -> tuple[Path, list[EvalItem]]:
    root = tmp_path_factory.mktemp("train-retriever")
    corpus = write_corpus(root / "docs")
    index_paths([corpus], root / "index", tiny_pipeline.index_spec(), workers=1)
    items = [
        EvalItem(id=f"{name}-{i}", question=q, split="train", gold_doc_ids=(str((corpus / name).resolve()),))
        for name, qs in QUESTIONS.items()
        for i, q in enumerate(qs)
    ]
    return root, items


def test_near_duplicate() -> None:
    assert near_duplicate("The arm lifts twelve kilograms.", "the arm lifts twelve kilograms")
    assert not near_duplicate("The arm lifts twelve kilograms.", "Revenue rose eighteen percent.")


def test_pick_negatives_skips_gold_docs_positive_and_near_duplicates() -> None:
    pos = make_chunk("p", "arm lifts twelve kilograms", doc_id="gold")
    hits = [
        make_hit("p", "arm lifts twelve kilograms", doc_id="gold"),
        make_hit("g2", "another gold passage", doc_id="gold"),
        make_hit("dup", "arm lifts twelve kilograms", doc_id="copy"),
        make_hit("n1", "revenue rose", doc_id="other"),
        make_hit("n2", "margin improved", doc_id="other2"),
    ]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 5, 0)] == ["n1", "n2"]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 1, 0)] == ["n1"]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 5, 4)] == ["n2"]


def test_labelled_examples_positives_are_gold_and_negatives_are_not(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig
) -> None:
    root, items = built
    index = Index.open(root / "index")
    examples = labelled_examples(items, index, tiny_pipeline.build(index), n_negatives=2, depth=20)
    assert len(examples) == len(items)
    by_q = {it.question: it for it in items}
    for ex in examples:
        gold = by_q[ex.query].gold_doc_ids[0]
        assert ex.positive.doc_id == gold
        assert ex.negatives and all(n.doc_id != gold for n in ex.negatives)


def test_training_columns_drop_rows_short_of_negatives() -> None:
    pos, neg = make_chunk("p", "pos"), make_chunk("n", "neg")
    examples = [
        TrainExample(query="q1", positive=pos, negatives=(neg,)),
        TrainExample(query="q2", positive=pos),
    ]
    cols, dropped = training_columns(examples, DenseConfig(query_prefix="query: "), 1)
    assert dropped == 1
    assert cols == {"anchor": ["query: q1"], "positive": ["pos"], "negative_1": ["neg"]}


def _weights(model_dir: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return dict(load_file(str(next(model_dir.rglob("model.safetensors")))))


def test_train_moves_weights_saves_and_resumes(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_st_path: Path, tmp_path: Path
) -> None:
    import torch

    root, items = built
    index = Index.open(root / "index")
    examples = labelled_examples(items, index, tiny_pipeline.build(index), n_negatives=1, depth=20)
    train = RetrieverTrainConfig(batch_size=2, epochs=2, learning_rate=1e-3, n_negatives=1)
    result = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out")
    assert result.steps == 6 and result.examples == 6 and not result.stopped_early
    before, after = _weights(tiny_st_path), _weights(result.model_dir)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # type: ignore[arg-type]
    dense = [r for r in result.pipeline.retrievers if isinstance(r, DenseConfig)][0]
    assert dense.model == str(result.model_dir)
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-6").is_dir()
    # Re-running with the same output folder resumes from the last checkpoint: nothing left to train.
    again = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out")
    assert again.resumed_from is not None and again.resumed_from.endswith("checkpoint-6")


def test_max_minutes_stops_and_checkpoints(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tmp_path: Path
) -> None:
    root, items = built
    index = Index.open(root / "index")
    examples = labelled_examples(items, index, tiny_pipeline.build(index), n_negatives=1, depth=20)
    train = RetrieverTrainConfig(batch_size=2, epochs=3, n_negatives=1, max_minutes=1e-6)
    result = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out")
    assert result.stopped_early and result.steps == 1
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-1").is_dir()
    resumed = train_retriever(
        tiny_pipeline, train.model_copy(update={"max_minutes": None}), examples, out=tmp_path / "out"
    )
    assert resumed.resumed_from is not None and resumed.steps == 9


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


def test_lm_supervision_scores_passages_and_trains(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path: Path
) -> None:
    from ragsys.generate.hf import GeneratorConfig
    from ragsys.train.mining.lm import lm_score_passages
    from ragsys.train.retriever import lsr_columns

    root, items = built
    index = Index.open(root / "index")
    search = tiny_pipeline.build(index)
    answered = [it.model_copy(update={"answer": "twelve kilograms", "label": "yes"}) for it in items]
    hits = search.search_many([it.question for it in answered], 4)
    generator = GeneratorConfig(model=str(tiny_lm_path), max_new_tokens=4).build()
    scored = lm_score_passages(generator, answered, hits, k=3)
    assert len(scored) == len(answered)
    assert all(len(s.lm_logps) == 3 and all(x < 0 for x in s.lm_logps) for s in scored)
    assert len(set(scored[0].lm_logps)) > 1  # different passages, different likelihoods
    cols = lsr_columns(scored, "q: ", "")
    assert list(cols) == ["anchor", "passage_1", "passage_2", "passage_3", "label"]
    assert cols["anchor"][0].startswith("q: ")
    unanswered = lm_score_passages(generator, items, hits, k=3)  # no reference answers: nothing to score
    assert unanswered == []
    examples = labelled_examples(items, index, search, n_negatives=1, depth=20)
    train = RetrieverTrainConfig(batch_size=2, epochs=1, n_negatives=1)
    result = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out", lm_scored=scored)
    assert result.lm_examples == len(scored) and result.steps == 6
