"""A learned mixture of retrievers: fusion settings fit on a dev split, saved with the pipeline.

`LearnedMixtureConfig` is declared unfitted in `pipelines/mixture.py`; `ragsys train
mixture` (or `ragsys eval`, when it meets an unfitted one) fits it on a dev split carved,
seeded, from the eval set's *train* questions, and stores the winning RRF/convex setting
in `fitted`. The test split is never used for fitting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from ragsys.fusion import ConvexConfig, RRFConfig
from ragsys.types import Frozen, Hit


class MixtureNotFittedError(ValueError):
    """A learned mixture was used before its weights were fit."""


class LearnedMixtureConfig(Frozen):
    kind: Literal["learned"] = "learned"
    fit_split: str = "train"
    dev_fraction: float = Field(default=0.25, gt=0, le=1)
    seed: int = 0
    fitted: RRFConfig | ConvexConfig | None = Field(default=None, discriminator="kind")
    dev_ndcg_at_10: float | None = None
    dev_queries: int = 0

    def fuse(self, runs: Sequence[Sequence[Hit]]) -> list[Hit]:
        if self.fitted is None:
            raise MixtureNotFittedError(
                "this pipeline's learned mixture is not fitted; run `ragsys train mixture --pipeline P "
                "--index DIR --eval-set FILE --out PIPELINE_DIR` and use --pipeline PIPELINE_DIR"
            )
        return self.fitted.fuse(runs)


def carve_dev(ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded, order-independent sample of `fraction` of the ids (at least one)."""
    pool = sorted(ids)
    random.Random(seed).shuffle(pool)
    return sorted(pool[: max(1, round(len(pool) * fraction))])
