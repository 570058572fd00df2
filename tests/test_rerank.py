"""Cross-encoder reranking: exact ordering with a fake scorer, plumbing with a tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ragsys.models import load_cross_encoder
from ragsys.rerank import CrossEncoderConfig, CrossEncoderReranker, min_max, mix_scores, raw_logits
from ragsys.types import Hit
from tests.fixtures.factories import make_hit
from tests.fixtures.tiny_models import make_tiny_cross_encoder


def _hit(cid: str, text: str, score: float = 0.0) -> Hit:
    return make_hit(cid, text, score, doc_id="d")


class FakeScorer:
    """Scores a pair by looking its passage up in a table; records every call."""

    def __init__(self, table: dict[str, float], column: bool = False) -> None:
        self.table, self.column = table, column
        self.calls: list[dict[str, Any]] = []

    def predict(self, inputs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        self.calls.append({"inputs": inputs, **kwargs})
        scores = np.array([self.table[p] for _, p in inputs], dtype=np.float32)
        return scores[:, None] if self.column else scores


def _reranker(table: dict[str, float], **config: Any) -> tuple[CrossEncoderReranker, FakeScorer]:
    fake = FakeScorer(table)
    return CrossEncoderReranker(CrossEncoderConfig(model="fake", **config), fake), fake


def test_config_requires_a_model_and_validates_ranges() -> None:
    with pytest.raises(ValidationError):
        CrossEncoderConfig()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CrossEncoderConfig(model="m", interpolate=1.5)
    config = CrossEncoderConfig(model="m", top_n=5)
    assert CrossEncoderConfig.model_validate(config.model_dump(mode="json")) == config


def test_rerank_orders_by_cross_encoder_score_with_raw_logits() -> None:
    reranker, fake = _reranker({"a": -1.0, "b": 3.0, "c": 0.5})
    hits = [_hit("1", "a", 9.0), _hit("2", "b", 1.0), _hit("3", "c", 5.0)]
    out = reranker.rerank("q", hits, k=2)
    assert [(h.chunk.id, h.score, h.source) for h in out] == [("2", 3.0, "rerank"), ("3", 0.5, "rerank")]
    call = fake.calls[0]
    assert call["inputs"] == [("q", "a"), ("q", "b"), ("q", "c")]
    assert call["activation_fn"] is raw_logits and call["show_progress_bar"] is False
    assert raw_logits(x := np.array([3.0, -1.0])) is x  # the identity: scores stay logits


def test_ties_break_by_chunk_id() -> None:
    reranker, _ = _reranker({"a": 1.0, "b": 1.0, "c": 2.0})
    out = reranker.rerank("q", [_hit("z", "a"), _hit("m", "b"), _hit("x", "c")], k=3)
    assert [h.chunk.id for h in out] == ["x", "m", "z"]


def test_only_the_first_top_n_hits_are_scored_and_the_tail_keeps_retrieval_order() -> None:
    reranker, fake = _reranker({"a": 0.0, "b": 1.0, "c": 99.0, "d": 50.0}, top_n=2)
    hits = [_hit("1", "a", 4.0), _hit("2", "b", 3.0), _hit("3", "c", 2.0), _hit("4", "d", 1.0)]
    out = reranker.rerank("q", hits, k=10)
    assert [h.chunk.id for h in out] == ["2", "1", "3", "4"]  # c and d never scored: their order stays
    assert [h.source for h in out] == ["rerank", "rerank", "bm25", "bm25"]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    assert len(fake.calls[0]["inputs"]) == 2
    assert [h.chunk.id for h in reranker.rerank("q", hits, k=3)] == ["2", "1", "3"]
    assert [h.chunk.id for h in reranker.rerank("q", hits, k=1)] == ["2"]


def test_without_keep_tail_hits_past_top_n_are_dropped() -> None:
    reranker, _ = _reranker({"a": 0.0, "b": 1.0, "c": 99.0}, top_n=2, keep_tail=False)
    out = reranker.rerank("q", [_hit("1", "a"), _hit("2", "b"), _hit("3", "c")], k=10)
    assert [h.chunk.id for h in out] == ["2", "1"]


def test_interpolation_mixes_min_max_normalized_scores_exactly() -> None:
    # cross: a=0, b=10, c=5 -> 0, 1, .5 ; retrieval: 4, 2, 0 -> 1, .5, 0
    reranker, _ = _reranker({"a": 0.0, "b": 10.0, "c": 5.0}, interpolate=0.25)
    out = reranker.rerank("q", [_hit("a", "a", 4.0), _hit("b", "b", 2.0), _hit("c", "c", 0.0)], k=3)
    assert [(h.chunk.id, h.score) for h in out] == [
        ("b", pytest.approx(0.75 * 1.0 + 0.25 * 0.5)),
        ("c", pytest.approx(0.75 * 0.5)),
        ("a", pytest.approx(0.25 * 1.0)),
    ]


def test_full_interpolation_keeps_the_retrieval_order() -> None:
    reranker, _ = _reranker({"a": 0.0, "b": 10.0}, interpolate=1.0)
    out = reranker.rerank("q", [_hit("a", "a", 4.0), _hit("b", "b", 2.0)], k=2)
    assert [h.chunk.id for h in out] == ["a", "b"]


def test_min_max_of_constant_scores_is_zero() -> None:
    np.testing.assert_array_equal(min_max(np.array([2.0, 2.0])), [0.0, 0.0])
    np.testing.assert_array_equal(mix_scores(np.array([3.0, -1.0]), np.array([0.0, 1.0]), 0.0), [3.0, -1.0])


def test_rerank_many_scores_all_queries_in_one_call() -> None:
    reranker, fake = _reranker({"a": 1.0, "b": 2.0, "c": 3.0})
    lists = [[_hit("1", "a"), _hit("2", "b")], [], [_hit("3", "c"), _hit("1", "a")]]
    many = reranker.rerank_many(["q1", "q2", "q3"], lists, k=5)
    assert len(fake.calls) == 1 and len(fake.calls[0]["inputs"]) == 4
    assert many == [reranker.rerank(q, h, k=5) for q, h in zip(["q1", "q2", "q3"], lists, strict=True)]
    assert many[1] == []
    with pytest.raises(ValueError, match="2 queries"):
        reranker.rerank_many(["q1", "q2"], lists)


def test_a_column_of_scores_is_accepted_but_two_labels_are_not() -> None:
    reranker = CrossEncoderReranker(
        CrossEncoderConfig(model="f"), FakeScorer({"a": 1.0, "b": 2.0}, column=True)
    )
    assert [h.chunk.id for h in reranker.rerank("q", [_hit("1", "a"), _hit("2", "b")])] == ["2", "1"]

    class TwoLabels(FakeScorer):
        def predict(self, inputs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
            return np.zeros((len(inputs), 2), np.float32)

    with pytest.raises(ValueError, match="num_labels=1"):
        CrossEncoderReranker(CrossEncoderConfig(model="f"), TwoLabels({})).rerank("q", [_hit("1", "a")])


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("ce"))


def test_tiny_cross_encoder_ranks_by_its_own_logits(tiny_ce: Path) -> None:
    texts = ["aspirin reduces risk", "revenue grew", "paris is the capital", "sleep loss impairs memory"]
    hits = [_hit(f"c{i}", t) for i, t in enumerate(texts)]
    reranker = CrossEncoderConfig(model=str(tiny_ce), max_length=64, batch_size=3, backend="torch").build()
    out = reranker.rerank("does aspirin help?", hits, k=4)
    model = load_cross_encoder(str(tiny_ce), max_length=64, device="cpu")
    logits = model.predict([("does aspirin help?", t) for t in texts], activation_fn=torch.nn.Identity())
    expected = sorted(
        zip(logits.tolist(), [h.chunk.id for h in hits], strict=True), key=lambda x: (-x[0], x[1])
    )
    assert [h.chunk.id for h in out] == [cid for _, cid in expected]
    assert [h.score for h in out] == pytest.approx([s for s, _ in expected], abs=1e-5)
