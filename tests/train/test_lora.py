"""LoRA wiring: attach, the reference context, and the save -> GeneratorConfig(adapter=...) round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ragsys.generate.config import GeneratorConfig
from ragsys.generate.hf import HFGenerator
from ragsys.models import load_causal_lm
from ragsys.train.lora import (
    LLAMA_PROJECTIONS,
    LoraSettings,
    adapter_parameters,
    attach_lora,
    load_adapter_weights,
    reference,
    save_adapter,
)

IDS = torch.tensor([[5, 17, 42, 8, 99, 3, 250, 11]])


def _lora_model(path: Path, settings: LoraSettings | None = None) -> Any:
    """The tiny Llama with an adapter whose B matrices are random: it now changes the outputs."""
    model, _ = load_causal_lm(str(path))
    torch.manual_seed(0)
    peft_model = attach_lora(model, settings or LoraSettings(dropout=0.0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in adapter_parameters(peft_model).items():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=gen)
    peft_model.train(False)
    return peft_model


def _logits(model: Any) -> torch.Tensor:
    with torch.inference_mode():
        out: torch.Tensor = model(input_ids=IDS).logits
    return out


def test_attach_trains_only_the_adapter_on_every_llama_projection(tiny_lm_path: Path) -> None:
    model = _lora_model(tiny_lm_path)
    trainable = adapter_parameters(model)
    assert trainable and all("lora_" in name for name in trainable)
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trainable}  # ...<proj>.lora_A...
    assert adapted == set(LLAMA_PROJECTIONS)
    r = LoraSettings().r
    assert all(r in p.shape for p in trainable.values())


def test_fresh_adapter_leaves_outputs_unchanged(tiny_lm_path: Path) -> None:
    base, _ = load_causal_lm(str(tiny_lm_path))
    expected = _logits(base)
    fresh, _ = load_causal_lm(str(tiny_lm_path))
    assert torch.equal(_logits(attach_lora(fresh, LoraSettings()).eval()), expected)  # lora_B starts at 0


def test_reference_gives_exactly_the_base_models_logits(tiny_lm_path: Path) -> None:
    base, _ = load_causal_lm(str(tiny_lm_path))
    expected = _logits(base)
    model = _lora_model(tiny_lm_path)
    assert not torch.allclose(_logits(model), expected, atol=1e-3)
    with reference(model):
        assert torch.equal(_logits(model), expected)
    assert not torch.allclose(_logits(model), expected, atol=1e-3)  # the adapter is back on after the block


def test_saved_adapter_loads_through_generator_config_and_changes_outputs(
    tiny_lm_path: Path, tmp_path: Path
) -> None:
    model = _lora_model(tiny_lm_path)
    folder = save_adapter(model, tmp_path / "adapter")
    assert (folder / "adapter_model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    assert json.loads((folder / "adapter_config.json").read_text())["r"] == LoraSettings().r

    base = GeneratorConfig(model=str(tiny_lm_path)).for_training().build()
    tuned = GeneratorConfig(model=str(tiny_lm_path), adapter=str(folder)).for_training().build()
    assert isinstance(base, HFGenerator) and isinstance(tuned, HFGenerator)
    base_logits, tuned_logits = _logits(base.model), _logits(tuned.model)
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-3)
    torch.testing.assert_close(tuned_logits, _logits(model), rtol=1e-4, atol=1e-4)  # merged == unmerged


def test_save_adapter_replaces_an_existing_folder_and_weights_reload(
    tiny_lm_path: Path, tmp_path: Path
) -> None:
    first = _lora_model(tiny_lm_path)
    save_adapter(first, tmp_path / "adapter")
    (tmp_path / "adapter" / "stale.txt").write_text("old")
    save_adapter(first, tmp_path / "adapter")
    assert not (tmp_path / "adapter" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temp folders left behind

    second, _ = load_causal_lm(str(tiny_lm_path))
    second = attach_lora(second, LoraSettings(dropout=0.0)).eval()
    assert not torch.equal(_logits(second), _logits(first))
    load_adapter_weights(second, tmp_path / "adapter")
    assert torch.equal(_logits(second), _logits(first))


def test_lora_settings_validate() -> None:
    with pytest.raises(ValueError):
        LoraSettings(r=0)
    with pytest.raises(ValueError):
        LoraSettings(dropout=1.0)
    assert LoraSettings.model_validate(LoraSettings().model_dump(mode="json")) == LoraSettings()
