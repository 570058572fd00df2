"""What the rankers train on: a question with its positive passage and hard negatives
(`TrainExample`), or with its top passages scored by the generator (`LMScored`). Mined by
`ragsys.train.mining`, consumed by the encoder and cross-encoder trainers."""

from __future__ import annotations

from ragsys.types import Chunk, Frozen


class TrainExample(Frozen):
    query: str
    positive: Chunk
    negatives: tuple[Chunk, ...] = ()
    query_id: str = ""


class LMScored(Frozen):
    """One question, its K passages, and log p_LM(reference | question, passage) for each."""

    query: str
    passages: tuple[Chunk, ...]
    lm_logps: tuple[float, ...]
