"""The generator on a tiny random Llama, run on each backend: the real decoding loops.

The text paths (abstention, citations, stop strings, streaming) are exact in test_local.py
with scripted models; here the models are real, so outputs are compared between runs and
between backends rather than with fixed strings.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from ragsys.generate.config import DEFAULT_ABSTAIN, GeneratorConfig
from ragsys.generate.local import LocalGenerator
from ragsys.models import ModelLoadError, load_causal_lm
from tests.fixtures.factories import make_hit
from tests.fixtures.generators import BACKENDS, HITS, QUESTION, TIMING_KEYS, generator_config
from tests.fixtures.tiny_models import make_tiny_causal_lm

_config = generator_config


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """GGUF exports of the tiny models go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGSYS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with its weights redrawn wider: at init scale, greedy decoding repeats one token."""
    tiny = make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
    model, tokenizer = load_causal_lm(str(tiny))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.5, generator=gen)
    out = tiny.parent / "lively-lm"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "llama-cpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install builds it)")
    return str(request.param)


@pytest.fixture(scope="module")
def built(lm_path: Path) -> dict[str, LocalGenerator]:
    """One loaded generator per backend (loading is the slow part), rebuilt per config below."""
    out: dict[str, LocalGenerator] = {}
    for backend in BACKENDS:
        try:
            out[backend] = _build(lm_path, backend)
        except ModelLoadError:
            pass  # llama-cpp-python missing: its tests skip via the `backend` fixture
    return out


def _build(lm_path: Path, backend: str, **overrides: Any) -> LocalGenerator:
    gen = _config(model=str(lm_path), backend=backend, **overrides).build()
    assert isinstance(gen, LocalGenerator) and gen.backend == backend
    return gen


def _gen(built: dict[str, LocalGenerator], backend: str, **overrides: Any) -> LocalGenerator:
    """The loaded backend with other decoding settings (the config is read at each call)."""
    base = built[backend]
    return LocalGenerator(base.config.model_copy(update=overrides), base.decoder, base.tokenizer)


# --- config ------------------------------------------------------------------------------


def test_config_defaults_round_trip_and_validate() -> None:
    config = GeneratorConfig()
    assert (config.kind, config.model, config.do_sample, config.context_tokens) == (
        "hf",
        "smollm2-135m",
        False,
        1024,
    )
    assert config.system_text().endswith(DEFAULT_ABSTAIN) and "{abstain_text}" not in config.system_text()
    assert GeneratorConfig.model_validate(config.model_dump(mode="json")) == config
    assert config.backend == "auto"
    for bad in (
        {"context_tokens": 0}, {"top_p": 1.5}, {"temperature": 0.0}, {"abstain_text": ""}, {"x": 1},
        {"backend": "onnx"}, {"backend": "openai"},
        {"backend": "openai", "base_url": "http://x", "adapter": "a"},
    ):  # fmt: skip
        with pytest.raises(ValidationError):
            GeneratorConfig(**bad)


# --- the real generation loops on a tiny model ---------------------------------------------


def test_greedy_is_deterministic(built: dict[str, LocalGenerator], backend: str) -> None:
    first = _gen(built, backend).generate(QUESTION, HITS)
    second = _gen(built, backend).generate(QUESTION, HITS)
    assert first.text and first.text == second.text and first.backend == backend
    assert first.timings["new_tokens"] == 16


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(
    built: dict[str, LocalGenerator], backend: str
) -> None:
    state = torch.get_rng_state()
    a = _gen(built, backend, do_sample=True, seed=1).generate(QUESTION, HITS)
    b = _gen(built, backend, do_sample=True, seed=1).generate(QUESTION, HITS)
    c = _gen(built, backend, do_sample=True, seed=2).generate(QUESTION, HITS)
    greedy = _gen(built, backend).generate(QUESTION, HITS)
    assert a.text == b.text and a.text != c.text and a.text != greedy.text
    assert torch.equal(torch.get_rng_state(), state)


def test_stop_strings_cut_real_generation(built: dict[str, LocalGenerator], backend: str) -> None:
    full = _gen(built, backend).generate(QUESTION, HITS)
    at = next(i for i in range(4, len(full.text) - 3) if full.text[i : i + 3].isalnum())
    stop = full.text[at : at + 3]
    cut = _gen(built, backend, stop=(stop,)).generate(QUESTION, HITS)
    assert cut.text == full.text[: full.text.index(stop)].rstrip()
    assert cut.timings["new_tokens"] < full.timings["new_tokens"]


def test_streaming_yields_the_same_text_as_generate(built: dict[str, LocalGenerator], backend: str) -> None:
    gen = _gen(built, backend, max_new_tokens=24)
    pieces = list(gen.generate_stream(QUESTION, HITS))
    assert len(pieces) > 1 and "".join(pieces) == gen.generate(QUESTION, HITS).text


def test_timings_are_recorded(built: dict[str, LocalGenerator], backend: str) -> None:
    gen = _gen(built, backend)
    t = gen.generate(QUESTION, HITS).timings
    assert TIMING_KEYS <= set(t)
    assert t["prompt_tokens"] == len(gen.prompt(QUESTION, HITS).ids) and t["new_tokens"] == 16
    assert 0 < t["ttft_s"] <= t["generate_s"]
    assert t["tokens_per_s"] == pytest.approx(16 / t["generate_s"])


def test_the_label_step_scores_every_option(built: dict[str, LocalGenerator], backend: str) -> None:
    gen = _gen(built, backend)
    answer = gen.generate(QUESTION, HITS)
    label, scores = gen.choose(answer, ["yes", "no", "maybe"])
    assert label in ("yes", "no", "maybe") and len(scores) == 3 and all(s < 0 for s in scores)
    assert label == ["yes", "no", "maybe"][max(range(3), key=lambda i: scores[i])]
    # a calibrated offset moves the choice, not the raw scores it reports
    loser = ["yes", "no", "maybe"][min(range(3), key=lambda i: scores[i])]
    lift = max(scores) - min(scores) + 1.0
    biased_label, biased_scores = _gen(built, backend, label_bias=((loser, lift),)).choose(
        answer, ["yes", "no", "maybe"]
    )
    assert biased_label == loser and biased_scores == pytest.approx(scores)


def test_llama_cpp_answers_as_transformers_does(built: dict[str, LocalGenerator]) -> None:
    """Q8_0 weights, the same prompt ids: the same first greedy tokens (this random model is chaotic,
    so rounding differences grow over a long answer), the same label, and its scores within 2%
    (this model's logits run to +-60: Q8_0 rounding moves them by tenths)."""
    pytest.importorskip("llama_cpp")
    torch_answer = _gen(built, "transformers", max_new_tokens=8).generate(QUESTION, HITS)
    fast_answer = _gen(built, "llama-cpp", max_new_tokens=8).generate(QUESTION, HITS)
    assert fast_answer.text == torch_answer.text
    torch_label, torch_scores = _gen(built, "transformers").choose(torch_answer, ["yes", "no", "maybe"])
    fast_label, fast_scores = _gen(built, "llama-cpp").choose(torch_answer, ["yes", "no", "maybe"])
    assert fast_label == torch_label and fast_scores == pytest.approx(torch_scores, rel=0.02)


# --- build() and adapters ----------------------------------------------------------------


def _save_lora(lm_path: Path, out: Path, init_lora_weights: bool) -> Path:
    from peft import LoraConfig, get_peft_model

    model, _ = load_causal_lm(str(lm_path))
    torch.manual_seed(0)
    lora = LoraConfig(
        r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=init_lora_weights
    )
    get_peft_model(model, lora).save_pretrained(out)
    return out


def test_a_lora_adapter_changes_the_output_and_a_zero_one_does_not(
    lm_path: Path, tmp_path: Path, backend: str
) -> None:
    base = _build(lm_path, backend).generate(QUESTION, HITS)
    live = _save_lora(lm_path, tmp_path / "live", init_lora_weights=False)
    zero = _save_lora(lm_path, tmp_path / "zero", init_lora_weights=True)  # B = 0: a no-op adapter
    assert _build(lm_path, backend, adapter=str(live)).generate(QUESTION, HITS).text != base.text
    assert _build(lm_path, backend, adapter=str(zero)).generate(QUESTION, HITS).text == base.text


def test_build_refuses_a_folder_that_is_not_an_adapter(lm_path: Path, tmp_path: Path, backend: str) -> None:
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        _config(model=str(lm_path), adapter=str(tmp_path), backend=backend).build()


def test_build_refuses_a_pickled_adapter(lm_path: Path, tmp_path: Path, backend: str) -> None:
    pickled = _save_lora(lm_path, tmp_path / "pickled", init_lora_weights=False)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match="never unpickles"):
        _config(model=str(lm_path), adapter=str(pickled), backend=backend).build()


def test_build_refuses_a_model_without_a_chat_template(lm_path: Path, tmp_path: Path, backend: str) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(lm_path, bare)
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match="chat template"):
        _config(model=str(bare), backend=backend).build()


@pytest.mark.slow
def test_smollm2_answers_from_the_passages_and_streams_the_same_text(backend: str) -> None:
    try:
        gen = GeneratorConfig(max_new_tokens=40, backend=backend).build()
    except ModelLoadError as e:
        pytest.skip(f"smollm2-135m is not available: {e}")
    hits = [make_hit("river", "The Varna river is 212 kilometres long and flows into Lake Orin.")]
    pieces: list[str] = []
    answer = gen.stream("How long is the Varna river?", hits, on_text=pieces.append)
    assert "212" in answer.text and not answer.abstained
    assert "".join(pieces) == answer.text and len(pieces) > 1


def test_saved_pipeline_with_adapter_answers_exactly_the_same(
    lm_path: Path, tmp_path: Path, backend: str
) -> None:
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config

    live = _save_lora(lm_path, tmp_path / "live", init_lora_weights=False)
    config = PipelineConfig(
        retrievers=(BM25Config(),), generator=_config(model=str(lm_path), adapter=str(live), backend=backend)
    )
    config.save(tmp_path / "saved")
    (tmp_path / "saved").rename(tmp_path / "moved")  # bundled weights: the folder stands alone
    loaded = PipelineConfig.load(tmp_path / "moved")
    assert loaded.generator is not None and loaded.generator.adapter is not None
    assert Path(loaded.generator.adapter).resolve().is_relative_to((tmp_path / "moved").resolve())
    before = config.generator.build().generate(QUESTION, HITS)  # type: ignore[union-attr]
    after = loaded.generator.build().generate(QUESTION, HITS)
    assert after.text == before.text
