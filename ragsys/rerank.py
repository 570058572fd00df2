"""Cross-encoder reranking: read query and passage together, score the pair.

A bi-encoder compares two independently made vectors; a cross-encoder attends across
query and passage tokens, which is more accurate and far slower, so it rescores only the
first `top_n` candidates of a cheaper retriever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ragsys.encoders.backend import EncoderBackend
from ragsys.types import Chunk, Frozen, Hit

Scores = npt.NDArray[np.float64]


class PairScorer(Protocol):
    """What the reranker needs of a `sentence_transformers.CrossEncoder` (tests pass fakes)."""

    def predict(
        self,
        inputs: list[tuple[str, str]],
        *,
        batch_size: int,
        show_progress_bar: bool,
        activation_fn: Callable[..., Any] | None,
        convert_to_numpy: bool,
    ) -> Any: ...


class CrossEncoderConfig(Frozen):
    """A cross-encoder reranker over the first `top_n` hits.

    `model` has no default on purpose: no pretrained cross-encoder is available offline,
    and a bi-encoder such as "minilm" loaded as a CrossEncoder gets a randomly initialized
    classification head, which ranks worse than no reranker at all. Point `model` at one
    trained with `ragsys train reranker` (a local folder) or at a hub cross-encoder such as
    "cross-encoder/ms-marco-MiniLM-L6-v2" where the network allows.

    `interpolate` mixes in the incoming retrieval score: both score lists are min-max
    normalized over the reranked hits and combined as
    `(1 - interpolate) * cross + interpolate * retrieval`. At 0 (the default) the score is
    the cross-encoder's raw logit, comparable across queries.

    `keep_tail` (the default) keeps the hits past `top_n` after the reranked ones, in their
    retrieval order, so asking for more than `top_n` hits loses nothing the retriever found
    (Recall@100 of a reranked pipeline is never below its retriever's); off, they are dropped.

    Example:
        >>> CrossEncoderConfig(model="runs/reranker", top_n=20, interpolate=0.3).top_n
        20
    """

    kind: Literal["cross-encoder"] = "cross-encoder"
    model: str
    top_n: int = Field(default=50, ge=1)
    max_length: int = Field(default=512, ge=8)
    batch_size: int = Field(default=32, ge=1)
    interpolate: float = Field(default=0.0, ge=0.0, le=1.0)
    keep_tail: bool = True
    # The runtime that scores pairs; "auto" as for dense encoders (ragsys/encoders/backend.py).
    backend: EncoderBackend = "auto"

    def build(self) -> CrossEncoderReranker:
        from ragsys.encoders import load_encoder

        model, resolved = load_encoder(self.model, "cross", self.backend, self.max_length)
        return CrossEncoderReranker(self, model, resolved)


def passage_text(chunk: Chunk) -> str:
    """The passage side of a pair; training builds its pairs with this too, so they match."""
    return chunk.text


class CrossEncoderReranker:
    """Rescores the first `top_n` hits and returns the best `k`.

    Hits past `top_n` follow the reranked ones in retrieval order when the config keeps the
    tail, with scores below every reranked hit's so that sorting by score keeps the order.

    Example:
        >>> reranker = CrossEncoderConfig(model="runs/reranker").build()  # doctest: +SKIP
        >>> reranker.rerank("does aspirin prevent stroke?", bm25.retrieve(q, 100), k=10)  # doctest: +SKIP
    """

    def __init__(self, config: CrossEncoderConfig, model: PairScorer, backend: str = "torch") -> None:
        self.config, self._model, self.backend = config, model, backend

    @property
    def model(self) -> PairScorer:
        """The cross-encoder that scores pairs (tune puts a score cache in front of it)."""
        return self._model

    def rerank(self, query: str, hits: Sequence[Hit], k: int = 10) -> list[Hit]:
        return self.rerank_many([query], [hits], k)[0]

    def rerank_many(
        self, queries: Sequence[str], hits: Sequence[Sequence[Hit]], k: int = 10
    ) -> list[list[Hit]]:
        """All queries' pairs go through one `predict` call, so batches stay full."""
        if len(queries) != len(hits):
            raise ValueError(f"got {len(queries)} queries but {len(hits)} hit lists")
        heads = [list(h[: self.config.top_n]) for h in hits]
        pairs = [(q, passage_text(h.chunk)) for q, head in zip(queries, heads, strict=True) for h in head]
        scores = self._predict(pairs)
        out: list[list[Hit]] = []
        start = 0
        for head, all_hits in zip(heads, hits, strict=True):
            ranked = self._order(head, scores[start : start + len(head)], k)
            start += len(head)
            if self.config.keep_tail and len(ranked) < k:
                ranked += tail(ranked, all_hits[self.config.top_n :], k - len(ranked))
            out.append(ranked)
        return out

    def _predict(self, pairs: list[tuple[str, str]]) -> Scores:
        if not pairs:
            return np.zeros(0, np.float64)
        # Raw logits: the default sigmoid saturates near 1 for confident pairs, turning
        # real differences into float ties.
        raw = self._model.predict(
            pairs,
            batch_size=self.config.batch_size,
            show_progress_bar=False,
            activation_fn=raw_logits,
            convert_to_numpy=True,
        )
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.shape != (len(pairs),):
            raise ValueError(
                f"the cross-encoder returned scores of shape {scores.shape} for {len(pairs)} pairs; "
                "a reranker needs a model with one output label (num_labels=1)"
            )
        return scores

    def _order(self, head: list[Hit], cross: Scores, k: int) -> list[Hit]:
        retrieval = np.array([h.score for h in head], dtype=np.float64)
        final = mix_scores(cross, retrieval, self.config.interpolate)
        hits = [
            h.model_copy(update={"score": float(s), "source": "rerank"})
            for h, s in zip(head, final, strict=True)
        ]
        return sorted(hits, key=lambda h: (-h.score, h.chunk.id))[: max(k, 0)]


def tail(ranked: Sequence[Hit], rest: Sequence[Hit], n: int) -> list[Hit]:
    """The first `n` of `rest` in their order, scored one step apart below `ranked`'s last."""
    floor = ranked[-1].score if ranked else 0.0
    return [h.model_copy(update={"score": floor - 1.0 - i}) for i, h in enumerate(rest[: max(n, 0)])]


def raw_logits(scores: Any) -> Any:
    """The identity, as the cross-encoder's activation: a plain function, so no torch import."""
    return scores


def mix_scores(cross: Scores, retrieval: Scores, weight: float) -> Scores:
    """`(1 - w) * minmax(cross) + w * minmax(retrieval)`; at w = 0 the raw cross scores.

    Min-max first because the two live on unrelated scales (logits vs BM25 or cosine).
    """
    if weight == 0.0:
        return cross
    return (1.0 - weight) * min_max(cross) + weight * min_max(retrieval)


def min_max(x: Scores) -> Scores:
    """Scaled to [0, 1]; all zeros when every value is equal (no information to scale)."""
    if x.size == 0:
        return x
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)
