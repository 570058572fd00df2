"""Fine-tunes the tiny sentence-transformer with `train_retriever`; run by test_accelerate.py,
plainly (one process) or under `accelerate launch --multi_gpu --num_processes 2`.

argv: tiny model folder, output folder, budget in minutes ("none": no limit). The main
process writes the run's result and the tuned model's embeddings of a few texts (`result.json`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEXTS = [f"passage {i} about {w}" for i, w in enumerate(["arms", "grease", "fruit", "floods", "revenue"])]


def main(st: Path, out: Path, minutes: float | None) -> None:
    import torch

    from ragsys.models import load_sentence_transformer
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.dense import DenseConfig
    from ragsys.train.examples import TrainExample
    from ragsys.train.parallel import current_world
    from ragsys.train.retriever import RetrieverTrainConfig, train_retriever
    from tests.fixtures.factories import make_chunk

    torch.set_num_threads(1)
    st = without_dropout(st, out / "base")
    config = PipelineConfig(name="enc", retrievers=(DenseConfig(model=str(st)),))
    topics = ["robot arms", "harmonic grease", "strawberry harvest", "valley floods", "quarterly revenue",
              "gross margin", "gripper pads", "night shifts"]  # fmt: skip
    examples = [
        TrainExample(query=f"what about {t}?", positive=make_chunk(f"p{i}", f"all about {t}"),
                     negatives=(make_chunk(f"n{i}", f"nothing on {topics[(i + 3) % 8]}"),))
        for i, t in enumerate(topics)
    ]  # fmt: skip
    train = RetrieverTrainConfig(loss="mnrl", batch_size=4, epochs=2, learning_rate=1e-3, warmup_ratio=0.0,
                                 max_seq_length=32, max_minutes=minutes)  # fmt: skip
    result = train_retriever(config, train, examples, out=out)
    if current_world().main:
        vectors = load_sentence_transformer(str(result.model_dir)).encode(TEXTS).tolist()
        (out / "result.json").write_text(json.dumps({
            "processes": current_world().size, "steps": result.steps, "stopped_early": result.stopped_early,
            "resumed_from": result.resumed_from, "vectors": vectors,
        }))  # fmt: skip


def without_dropout(st: Path, copy: Path) -> Path:
    """A copy of the model whose dropout is off: dropout masks depend on how the batch is split
    between processes, so only without it can two processes reproduce one exactly.

    Every process runs this at once: each writes its own copy and renames it into place, and a
    process that finds the place taken drops its copy (renaming onto a full folder fails)."""
    import os
    import shutil

    if copy.exists():
        return copy
    mine = copy.with_name(f"{copy.name}.{os.getpid()}")
    shutil.copytree(st, mine)
    config = json.loads((mine / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (mine / "config.json").write_text(json.dumps(config))
    try:
        mine.rename(copy)
    except OSError:
        shutil.rmtree(mine)
    return copy


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), None if sys.argv[3] == "none" else float(sys.argv[3]))
