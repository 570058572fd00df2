"""The llama.cpp backend's GGUF: written once per model and adapter content, loaded back exactly,
and a clear fallback where llama-cpp-python is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from ragsys.generate import llama
from ragsys.generate.config import GeneratorConfig
from ragsys.generate.gguf_export import GgufExportError, permute_qk, write_gguf
from ragsys.generate.hf import HFGenerator
from ragsys.models import ModelLoadError, load_causal_lm


def _lora(base: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model

    model, _ = load_causal_lm(str(base))
    torch.manual_seed(seed)
    lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(out)
    return out


def test_permute_qk_is_what_transformers_gguf_loader_undoes() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weights = np.arange(8 * 6 * 3, dtype=np.float32).reshape(8 * 6, 3)  # 8 heads of dim 6
    processor = LlamaTensorProcessor({"num_attention_heads": 8, "num_key_value_heads": 8})
    back = processor.process(permute_qk(weights, 8), "blk.0.attn_q.weight").weights
    np.testing.assert_array_equal(back, weights)


def test_a_written_gguf_loads_back_into_transformers(tiny_lm_path: Path, tmp_path: Path) -> None:
    model, _ = load_causal_lm(str(tiny_lm_path))
    out = write_gguf(model, tmp_path / "tiny.gguf", tokenizer_dir=tiny_lm_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name).eval()
    ids = torch.tensor([[5, 40, 41, 42, 7]])
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, model(ids).logits, atol=0.02, rtol=0.0)  # F16 rows


def test_the_export_is_cached_by_content(
    tiny_lm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGSYS_CACHE", str(tmp_path / "cache"))
    calls: list[Path] = []

    def counting(model: object, out: Path, **kwargs: object) -> Path:
        calls.append(out)
        return write_gguf(model, out, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("ragsys.generate.gguf_export.write_gguf", counting)  # exported() imports it per call
    base = GeneratorConfig(model=str(tiny_lm_path))
    first, _ = llama.exported(base)
    assert llama.exported(base)[0] == first and len(calls) == 1  # unchanged: not written again
    adapter = _lora(tiny_lm_path, tmp_path / "adapter", seed=0)
    tuned, _ = llama.exported(base.model_copy(update={"adapter": str(adapter)}))
    assert tuned != first and len(calls) == 2
    _lora(tiny_lm_path, adapter, seed=1)  # retrained into the same folder: new content
    retuned, _ = llama.exported(base.model_copy(update={"adapter": str(adapter)}))
    assert retuned not in (first, tuned) and len(calls) == 3


def test_a_model_llama_cpp_cannot_run_is_refused_clearly(tiny_st_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="backend 'llama-cpp'"):
        GeneratorConfig(model=str(tiny_st_path), backend="llama-cpp").build()


def test_without_llama_cpp_auto_answers_on_transformers_and_says_why(
    tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # its import now fails
    llama.note.cache_clear()
    generator = GeneratorConfig(model=str(tiny_lm_path)).build()
    assert (
        isinstance(generator, HFGenerator) and "llama-cpp-python is not installed" in capsys.readouterr().err
    )
    with pytest.raises(ModelLoadError, match="make install"):
        GeneratorConfig(model=str(tiny_lm_path), backend="llama-cpp").build()


def test_a_bert_is_no_llama(tiny_st_path: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(tiny_st_path))
    with pytest.raises(GgufExportError, match="llama"):
        write_gguf(bert, tmp_path / "x.gguf", tokenizer_dir=tiny_st_path)
