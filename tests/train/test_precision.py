"""bf16 training: used only where the CPU runs bf16 natively, and then it trains (weights move)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.encoders import backend as backends
from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.mining.hard_negatives import labelled_examples
from ragsys.train.precision import use_bf16
from ragsys.train.retriever import RetrieverTrainConfig, train_retriever


def test_bf16_is_dropped_with_a_note_where_the_cpu_lacks_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2"}))
    backends.note.cache_clear()
    assert not use_bf16(True) and "training in fp32" in capsys.readouterr().err
    assert not use_bf16(False)
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert use_bf16(True) and use_bf16(True, device="cuda")


@pytest.mark.skipif(not backends.has_bf16(), reason="this CPU has no bf16 instructions")
def test_a_bf16_retriever_run_trains(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_st_path: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    root, items = built
    index = Index.open(root / "index")
    examples = labelled_examples(items, index, tiny_pipeline.build(index), n_negatives=1, depth=20)
    train = RetrieverTrainConfig(batch_size=2, epochs=1, learning_rate=1e-3, n_negatives=1, bf16=True)
    result = train_retriever(tiny_pipeline, train, examples, out=tmp_path / "out")
    before = load_file(str(tiny_st_path / "model.safetensors"))
    after = load_file(str(next(result.model_dir.rglob("model.safetensors"))))
    assert result.steps == 3 and any(not torch.equal(before[k], after[k]) for k in before)
    assert all(v.dtype == torch.float32 for v in after.values())  # master weights stay fp32
