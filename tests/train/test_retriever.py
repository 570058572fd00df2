"""Retriever fine-tuning on the tiny sentence transformer: columns, resume, the time budget,
and LM-supervised targets."""

from __future__ import annotations

import time
from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.dense import DenseConfig
from ragsys.train.examples import TrainExample
from ragsys.train.mining.hard_negatives import labelled_examples
from ragsys.train.retriever import RetrieverTrainConfig, train_retriever, training_columns
from tests.fixtures.factories import make_chunk


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


def test_lm_supervision_scores_passages_and_trains(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path: Path
) -> None:
    from ragsys.generate.config import GeneratorConfig
    from ragsys.train.mining.lm import lm_score_passages
    from ragsys.train.retriever import lsr_columns

    root, items = built
    index = Index.open(root / "index")
    search = tiny_pipeline.build(index)
    answered = [it.model_copy(update={"answer": "twelve kilograms", "label": "yes"}) for it in items]
    hits = search.search_many([it.question for it in answered], 4)
    generator = GeneratorConfig(model=str(tiny_lm_path), max_new_tokens=4).for_training().build()
    scored = lm_score_passages(generator, answered, hits, k=3)
    assert len(scored) == len(answered)
    assert all(len(s.lm_logps) == 3 and all(x < 0 for x in s.lm_logps) for s in scored)
    assert len(set(scored[0].lm_logps)) > 1  # different passages, different likelihoods
    cols = lsr_columns(scored, "q: ", "")
    assert list(cols) == ["anchor", "passage_1", "passage_2", "passage_3", "label"]
    assert cols["anchor"][0].startswith("q: ")
    unanswered = lm_score_passages(generator, items, hits, k=3)  # no reference answers: nothing to score
    assert unanswered == []
    assert lm_score_passages(generator, answered, hits, k=3, deadline=time.monotonic() - 1.0) == []
    examples = labelled_examples(items, index, search, n_negatives=1, depth=20)
    train = RetrieverTrainConfig(batch_size=2, epochs=1, n_negatives=1)
    result = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out", lm_scored=scored)
    assert result.lm_examples == len(scored) and result.steps == 6


def test_few_examples_get_more_epochs_up_to_min_steps() -> None:
    from ragsys.train.retriever import RetrieverTrainConfig, epochs_for

    train = RetrieverTrainConfig(batch_size=32, epochs=1.0, min_steps=16)
    assert epochs_for(train, 107) == 4.0  # 4 steps an epoch
    assert epochs_for(train, 1000) == 1.0  # 32 steps an epoch already
    assert epochs_for(RetrieverTrainConfig(batch_size=32, epochs=2.0), 10) == 2.0  # min_steps 0
