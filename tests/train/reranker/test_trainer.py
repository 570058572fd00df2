"""Reranker post-training: losses move a tiny cross-encoder, the trainer checkpoints and resumes,
the budget stops it, and the dev check keeps only a reranker that helps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ragsys.models import load_cross_encoder
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.train.examples import TrainExample
from ragsys.train.reranker.config import RerankerTrainConfig
from ragsys.train.reranker.trainer import LOSSES, listwise_columns, pointwise_columns, train_reranker
from tests.fixtures.factories import make_chunk
from tests.fixtures.rerank_dev import FakeScorer, dev_setup
from tests.fixtures.tiny_models import make_tiny_cross_encoder

TOPICS = ("aspirin heart attack", "vitamin deficiency", "lung cancer smoking", "vaccine antibodies",
          "revenue quarter", "dividend per share", "sleep memory", "gene expression")  # fmt: skip


@pytest.fixture(scope="session")
def tiny_ce_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"))


def examples(n_negatives: int = 2) -> list[TrainExample]:
    chunks = [make_chunk(f"c{i}", f"The study of {t} found a clear effect.") for i, t in enumerate(TOPICS)]
    return [
        TrainExample(
            query=f"what about {t}?",
            positive=chunks[i],
            negatives=tuple(chunks[(i + j) % len(chunks)] for j in range(1, n_negatives + 1)),
        )
        for i, t in enumerate(TOPICS)
    ]


def fixed_batch(loss_name: str) -> tuple[list[list[str]], torch.Tensor | None]:
    cols, _ = LOSSES[loss_name].columns(examples(), 2)
    labels = cols.pop("label", None)
    return list(cols.values()), (torch.tensor(labels) if labels is not None else None)


# --- columns --------------------------------------------------------------------------------


def test_listwise_columns_pad_short_negative_lists_and_drop_empty_ones() -> None:
    exs = examples(1) + [examples(1)[0].model_copy(update={"negatives": ()})]
    cols, dropped = listwise_columns(exs, 3)
    assert dropped == 1
    assert list(cols) == ["query", "positive", "negative_1", "negative_2", "negative_3"]
    assert len(cols["query"]) == len(TOPICS)
    assert cols["negative_1"] == cols["negative_2"] == cols["negative_3"]  # one negative, cycled
    assert cols["positive"][0] == exs[0].positive.text  # rerank.passage_text: what inference scores


def test_pointwise_columns_label_one_positive_per_negatives() -> None:
    cols, dropped = pointwise_columns(examples(3), 2)
    assert dropped == 0
    assert cols["label"][:3] == [1.0, 0.0, 0.0]
    assert len(cols["query"]) == 3 * len(TOPICS)


# --- losses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_name", ["listwise", "bce"])
def test_training_steps_move_weights_and_lower_the_loss(tiny_ce_path: Path, loss_name: str) -> None:
    model = load_cross_encoder(str(tiny_ce_path), device="cpu")  # eval mode: no dropout noise
    # pos_weight 1 on a 1:2 batch (bce): a random tiny model scores every pair alike, so the
    # balanced loss would already sit at its optimum and there would be nothing to lower.
    loss_fn = LOSSES[loss_name].build(model, RerankerTrainConfig(n_negatives=1, in_batch_negatives=1))
    inputs, labels = fixed_batch(loss_name)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    # A random tiny model starts at the loss's plateau (ln 4 for listwise), where a single
    # AdamW step of this size can overshoot by ~1e-5 depending on the initialization; a few
    # small steps on the fixed batch must bring it down.
    torch.manual_seed(0)  # the listwise loss samples its in-batch negative
    with torch.no_grad():
        loss = loss_fn(inputs, labels)
    for _ in range(5):
        optimizer.zero_grad()
        torch.manual_seed(0)
        loss_fn(inputs, labels).backward()
        optimizer.step()
    with torch.no_grad():
        torch.manual_seed(0)
        after = loss_fn(inputs, labels)

    assert after.item() < loss.item()
    assert any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))


# --- trainer: checkpoints, resume, budget ---------------------------------------------------


def test_budget_stops_then_a_second_call_resumes_from_the_checkpoint(
    tiny_ce_path: Path, tmp_path: Path
) -> None:
    config = PipelineConfig(retrievers=(BM25Config(),))
    base = RerankerTrainConfig(model=str(tiny_ce_path), n_negatives=2, epochs=2, batch_size=4, max_length=32)
    first = train_reranker(config, base.model_copy(update={"max_minutes": 1e-9}), examples(), out=tmp_path)
    assert first.stopped_early and first.steps == 1
    assert (tmp_path / "checkpoints" / "checkpoint-1" / "trainer_state.json").exists()
    assert (tmp_path / "model" / "model.safetensors").exists()

    second = train_reranker(config, base, examples(), out=tmp_path)
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-1")
    assert not second.stopped_early
    assert second.steps == 4  # 8 examples / 4 per step * 2 epochs: continued, not restarted
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    # no dev set: kept, but unchecked, and said so
    assert second.used and not second.checked and second.dev is None
    assert second.pipeline.reranker is not None and second.pipeline.reranker.model == str(tmp_path / "model")


def test_grad_accum_takes_one_optimizer_step_per_accumulated_batches(
    tiny_ce_path: Path, tmp_path: Path
) -> None:
    config = PipelineConfig(retrievers=(BM25Config(),))
    train = RerankerTrainConfig(
        model=str(tiny_ce_path), n_negatives=2, epochs=1, batch_size=2, grad_accum=2, max_length=32
    )
    result = train_reranker(config, train, examples(), out=tmp_path)
    assert result.steps == 2  # 8 examples / (2 per batch * 2 batches per step)


# --- the dev check --------------------------------------------------------------------------


def test_train_reranker_with_dev_uses_the_reranker_only_when_the_check_says_so(
    tiny_ce_path: Path, tmp_path: Path
) -> None:
    items, search, _ = dev_setup()
    train = RerankerTrainConfig(model=str(tiny_ce_path), n_negatives=2, epochs=1, batch_size=4, max_length=32)
    result = train_reranker(search.config, train, examples(), out=tmp_path, dev=items, search=search)
    assert result.checked and result.dev is not None
    assert result.used == (result.dev.best is not None)
    assert (result.pipeline.reranker is not None) == result.used
    if result.used:
        assert result.pipeline.reranker is not None
        assert result.pipeline.reranker.interpolate == result.interpolate == result.dev.best
    else:
        assert result.pipeline == search.config


def test_dev_without_search_is_an_error(tmp_path: Path) -> None:
    items, _, _ = dev_setup()
    with pytest.raises(ValueError, match="needs `search`"):
        train_reranker(PipelineConfig(retrievers=(BM25Config(),)), RerankerTrainConfig(), examples(),
                       out=tmp_path, dev=items)  # fmt: skip


def test_dev_check_scores_reach_the_tune_scorer_for_any_copy_of_the_model(
    tiny_ce_path: Path, tmp_path: Path
) -> None:
    """`ragsys tune` judges the reranker stage by reranking dev again with the stage's saved
    pipeline, which bundles a copy of the weights: those pairs must not be scored twice."""
    import shutil

    from ragsys.tune.scoring import Scorer

    items, search, _ = dev_setup()
    train = RerankerTrainConfig(model=str(tiny_ce_path), n_negatives=2, epochs=1, batch_size=4, max_length=32)
    scorer = Scorer(answer_k=3)
    seen: dict[str, Any] = {}

    def keep(model_dir: Path, scores: Any) -> None:
        seen["dir"], seen["scores"] = model_dir, dict(scores)
        scorer.remember_pairs(model_dir, scores)

    result = train_reranker(
        search.config, train, examples(), out=tmp_path / "rr", dev=items, search=search, on_dev_scores=keep
    )
    assert seen["dir"] == result.model_dir and len(seen["scores"]) == 6 * 5  # six questions, five candidates
    copy = tmp_path / "bundled"
    shutil.copytree(result.model_dir, copy)
    model = FakeScorer(lambda q, p: 99.0)
    known = list(seen["scores"])
    assert np.allclose(scorer.pair_scorer(str(copy), model).predict(known), list(seen["scores"].values()))
    assert model.calls == 0
    scorer.pair_scorer(str(copy), model).predict([("a new question?", "passage d0-0")])
    assert model.calls == 1
    other = FakeScorer(lambda q, p: 5.0)  # other weights share nothing
    assert scorer.pair_scorer(str(tiny_ce_path), other).predict(known[:1])[0] == 5.0
