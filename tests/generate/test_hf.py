"""The generator: scripted fakes for exact text paths, a tiny random Llama for the real loop."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from ragsys.generate.hf import DEFAULT_ABSTAIN, GeneratorConfig, HFGenerator
from ragsys.generate.prompt import ChatTokenizer
from ragsys.models import ModelLoadError, load_causal_lm, load_tokenizer
from ragsys.types import Answer
from tests.fixtures.factories import make_hit
from tests.fixtures.tiny_models import CORPUS, make_tiny_causal_lm

ABSTAIN = "I do not know."
SYSTEM = "Cite [n]. Else say: {abstain_text}"  # short: the tiny model's window is 256 tokens
TIMING_KEYS = {"prompt_s", "prompt_tokens", "new_tokens", "ttft_s", "generate_s", "tokens_per_s"}


HITS = [make_hit("a", CORPUS[0]), make_hit("b", CORPUS[4])]
QUESTION = "Does aspirin help?"


def _config(**overrides: Any) -> GeneratorConfig:
    base: dict[str, Any] = {"system_prompt": SYSTEM, "abstain_text": ABSTAIN, "max_new_tokens": 16}
    return GeneratorConfig(**(base | overrides))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A 2-layer model gains nothing from threads, and on a busy CPU they spin: 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture(scope="module")
def model_and_tok(lm_path: Path) -> tuple[Any, Any]:
    return load_causal_lm(str(lm_path))


def _gen(model_and_tok: tuple[Any, Any], **overrides: Any) -> HFGenerator:
    model, tok = model_and_tok
    return HFGenerator(_config(**overrides), model, tok)


class ScriptedLM:
    """Replies with fixed text, one token per step, calling the stopping criteria as `generate` does."""

    def __init__(self, tokenizer: ChatTokenizer, reply: str) -> None:
        self._reply = tokenizer.encode(reply, add_special_tokens=False)
        self.steps = 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def generate(
        self, input_ids: torch.Tensor, stopping_criteria: Sequence[Any], **kwargs: Any
    ) -> torch.Tensor:
        ids = input_ids
        for token in self._reply[: kwargs["max_new_tokens"]]:
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            self.steps += 1
            if any(bool(c(ids, None).all()) for c in stopping_criteria):
                break
        return ids


class FailingLM:
    """A model that must never be touched."""

    @property
    def device(self) -> torch.device:
        raise AssertionError("the model was used")

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was called")


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
    for bad in ({"context_tokens": 0}, {"top_p": 1.5}, {"temperature": 0.0}, {"abstain_text": ""}, {"x": 1}):
        with pytest.raises(ValidationError):
            GeneratorConfig(**bad)


# --- text paths with a scripted model ----------------------------------------------------


@pytest.fixture(scope="module")
def tok(lm_path: Path) -> ChatTokenizer:
    tokenizer: ChatTokenizer = load_tokenizer(str(lm_path))
    return tokenizer


def test_no_context_abstains_without_calling_the_model(tok: ChatTokenizer) -> None:
    gen = HFGenerator(_config(), FailingLM(), tok)
    answer = gen.generate(QUESTION, [])
    assert answer == Answer(question=QUESTION, text=ABSTAIN, abstained=True, timings=answer.timings)
    assert TIMING_KEYS <= set(answer.timings) and answer.timings["new_tokens"] == 0
    assert list(gen.generate_stream(QUESTION, [])) == [ABSTAIN]


def test_the_abstention_phrase_is_detected(tok: ChatTokenizer) -> None:
    answer = HFGenerator(_config(), ScriptedLM(tok, "i do not know"), tok).generate(QUESTION, HITS)
    assert answer.abstained and answer.text == "i do not know"
    answer = HFGenerator(_config(), ScriptedLM(tok, "Aspirin helps [1]."), tok).generate(QUESTION, HITS)
    assert not answer.abstained


def test_citations_are_parsed_against_the_prompt_passages(tok: ChatTokenizer) -> None:
    reply = "Aspirin helps [1][3]. Smoking hurts [2]. Again [1]."
    answer = HFGenerator(_config(max_new_tokens=80), ScriptedLM(tok, reply), tok).generate(QUESTION, HITS)
    assert [(c.n, c.chunk_id) for c in answer.citations] == [(1, "a"), (2, "b")]
    assert answer.dropped_citations == 1
    assert answer.contexts == tuple(HITS)
    assert answer.timings["passages"] == 2 and answer.timings["passages_dropped"] == 0


def test_passages_caps_what_reaches_the_prompt(tok: ChatTokenizer) -> None:
    answer = HFGenerator(_config(passages=1), ScriptedLM(tok, "Aspirin helps [1]."), tok).generate(
        QUESTION, HITS
    )
    assert answer.contexts == (HITS[0],) and answer.timings["passages"] == 1
    assert [c.chunk_id for c in answer.citations] == ["a"]


def test_a_stop_string_ends_generation_and_is_cut(tok: ChatTokenizer) -> None:
    reply = "Aspirin helps [1].\nQuestion: does it help more? Yes it does, a lot."
    lm = ScriptedLM(tok, reply)
    answer = HFGenerator(_config(max_new_tokens=80), lm, tok).generate(QUESTION, HITS)
    assert answer.text == "Aspirin helps [1]."
    assert lm.steps < len(lm._reply)  # stopped early, not merely trimmed afterwards
    assert answer.timings["new_tokens"] == lm.steps


def test_streamed_pieces_join_to_the_answer(tok: ChatTokenizer) -> None:
    reply = "Aspirin helps [1]. Smoking hurts [2].\nQuestion: next"
    gen = HFGenerator(_config(max_new_tokens=80), ScriptedLM(tok, reply), tok)
    pieces: list[str] = []
    answer = gen.stream(QUESTION, HITS, on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == answer.text == "Aspirin helps [1]. Smoking hurts [2]."


def test_errors_in_the_generation_thread_reach_the_consumer(tok: ChatTokenizer) -> None:
    class Broken(ScriptedLM):
        def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        list(HFGenerator(_config(), Broken(tok, ""), tok).generate_stream(QUESTION, HITS))


def test_a_prompt_past_the_model_window_fails_with_a_fix(tok: ChatTokenizer) -> None:
    with pytest.raises(ValueError, match="context_tokens"):
        HFGenerator(_config(max_new_tokens=250), FailingLM(), tok).generate(QUESTION, HITS)


# --- the real generation loop on a tiny model ----------------------------------------------


def test_greedy_is_deterministic(model_and_tok: tuple[Any, Any]) -> None:
    first = _gen(model_and_tok).generate(QUESTION, HITS)
    second = _gen(model_and_tok).generate(QUESTION, HITS)
    assert first.text and first.text == second.text
    assert first.timings["new_tokens"] == 16


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(
    model_and_tok: tuple[Any, Any],
) -> None:
    state = torch.get_rng_state()
    a = _gen(model_and_tok, do_sample=True, seed=1).generate(QUESTION, HITS)
    b = _gen(model_and_tok, do_sample=True, seed=1).generate(QUESTION, HITS)
    c = _gen(model_and_tok, do_sample=True, seed=2).generate(QUESTION, HITS)
    greedy = _gen(model_and_tok).generate(QUESTION, HITS)
    assert a.text == b.text and a.text != c.text and a.text != greedy.text
    assert torch.equal(torch.get_rng_state(), state)


def test_stop_strings_cut_real_generation(model_and_tok: tuple[Any, Any]) -> None:
    full = _gen(model_and_tok).generate(QUESTION, HITS)
    at = next(i for i in range(4, len(full.text) - 3) if full.text[i : i + 3].isalnum())
    stop = full.text[at : at + 3]
    cut = _gen(model_and_tok, stop=(stop,)).generate(QUESTION, HITS)
    assert cut.text == full.text[: full.text.index(stop)].rstrip()
    assert cut.timings["new_tokens"] < full.timings["new_tokens"]


def test_streaming_yields_the_same_text_as_generate(model_and_tok: tuple[Any, Any]) -> None:
    gen = _gen(model_and_tok, max_new_tokens=24)
    pieces = list(gen.generate_stream(QUESTION, HITS))
    assert len(pieces) > 1 and "".join(pieces) == gen.generate(QUESTION, HITS).text


def test_leaving_the_stream_early_stops_generation(tok: ChatTokenizer) -> None:
    class SlowLM(ScriptedLM):
        def generate(
            self, input_ids: torch.Tensor, stopping_criteria: Sequence[Any], **kw: Any
        ) -> torch.Tensor:
            slowed = [
                lambda ids, scores, c=c: (time.sleep(0.01), c(ids, scores))[1] for c in stopping_criteria
            ]
            return super().generate(input_ids, slowed, **kw)

    lm = SlowLM(tok, " ".join(CORPUS[:3]))  # ~40 tokens, 10 ms each
    stream = HFGenerator(_config(max_new_tokens=80), lm, tok).generate_stream(QUESTION, HITS)
    next(stream)
    stream.close()
    assert lm.steps < len(lm._reply) // 2
    assert not any(t.name == "ragsys-generate" for t in threading.enumerate())


def test_timings_are_recorded(model_and_tok: tuple[Any, Any]) -> None:
    gen = _gen(model_and_tok)
    t = gen.generate(QUESTION, HITS).timings
    assert TIMING_KEYS <= set(t)
    assert t["prompt_tokens"] == len(gen.prompt(QUESTION, HITS).ids) and t["new_tokens"] == 16
    assert 0 < t["ttft_s"] <= t["generate_s"]
    assert t["tokens_per_s"] == pytest.approx(16 / t["generate_s"])


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


def test_a_lora_adapter_changes_the_output_and_a_zero_one_does_not(lm_path: Path, tmp_path: Path) -> None:
    base = _config(model=str(lm_path)).build().generate(QUESTION, HITS)
    live = _save_lora(lm_path, tmp_path / "live", init_lora_weights=False)
    zero = _save_lora(lm_path, tmp_path / "zero", init_lora_weights=True)  # B = 0: a no-op adapter
    assert _config(model=str(lm_path), adapter=str(live)).build().generate(QUESTION, HITS).text != base.text
    assert _config(model=str(lm_path), adapter=str(zero)).build().generate(QUESTION, HITS).text == base.text


def test_build_refuses_a_folder_that_is_not_an_adapter(lm_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        _config(model=str(lm_path), adapter=str(tmp_path)).build()


def test_build_refuses_a_pickled_adapter(lm_path: Path, tmp_path: Path) -> None:
    pickled = _save_lora(lm_path, tmp_path / "pickled", init_lora_weights=False)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match="never unpickles"):
        _config(model=str(lm_path), adapter=str(pickled)).build()


def test_build_refuses_a_model_without_a_chat_template(lm_path: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(lm_path, bare)
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match="chat template"):
        _config(model=str(bare)).build()


@pytest.mark.slow
def test_smollm2_answers_from_the_passages_and_streams_the_same_text() -> None:
    try:
        gen = GeneratorConfig(max_new_tokens=40).build()
    except ModelLoadError as e:
        pytest.skip(f"smollm2-135m is not available: {e}")
    hits = [make_hit("river", "The Varna river is 212 kilometres long and flows into Lake Orin.")]
    pieces: list[str] = []
    answer = gen.stream("How long is the Varna river?", hits, on_text=pieces.append)
    assert "212" in answer.text and not answer.abstained
    assert "".join(pieces) == answer.text and len(pieces) > 1


def test_saved_pipeline_with_adapter_answers_exactly_the_same(lm_path: Path, tmp_path: Path) -> None:
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config

    live = _save_lora(lm_path, tmp_path / "live", init_lora_weights=False)
    config = PipelineConfig(
        retrievers=(BM25Config(),), generator=_config(model=str(lm_path), adapter=str(live))
    )
    config.save(tmp_path / "saved")
    (tmp_path / "saved").rename(tmp_path / "moved")  # bundled weights: the folder stands alone
    loaded = PipelineConfig.load(tmp_path / "moved")
    assert loaded.generator is not None and loaded.generator.adapter is not None
    assert Path(loaded.generator.adapter).resolve().is_relative_to((tmp_path / "moved").resolve())
    before = config.generator.build().generate(QUESTION, HITS)  # type: ignore[union-attr]
    after = loaded.generator.build().generate(QUESTION, HITS)
    assert after.text == before.text
