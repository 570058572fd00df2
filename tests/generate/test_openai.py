"""The OpenAI-compatible backend against a real server: llama.cpp's, started here on loopback.

The server runs the tiny random Llama (written as GGUF by ragsys's own export), so answers are
noise; what is checked is the transport and the shared answer logic: streaming, stop strings,
the token limit, citations and abstention read as on the local backends, the bearer token,
and clear errors for a wrong token or an unreachable server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from ragsys.generate.config import GeneratorConfig
from ragsys.generate.gguf_export import write_gguf
from ragsys.generate.openai import OpenAIGenerator, RemoteGenerationError
from ragsys.models import load_causal_lm
from tests.fixtures.factories import make_hit
from tests.fixtures.tiny_models import CORPUS

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed (make install)")

TOKEN = "sesame"
HITS = [make_hit("a", CORPUS[0]), make_hit("b", CORPUS[4])]
QUESTION = "Does aspirin help?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_lm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model, _ = load_causal_lm(str(tiny_lm_path))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights drawn wider: at init scale the model says nothing but end-of-text
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.5, generator=gen)
    gguf = write_gguf(model, tmp_path_factory.mktemp("gguf") / "tiny.gguf", tokenizer_dir=tiny_lm_path)
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--api_key", TOKEN,
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture()
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSYS_TEST_TOKEN", TOKEN)


def _gen(server: str, tiny_lm_path: Path, **overrides: Any) -> OpenAIGenerator:
    config = GeneratorConfig(
        backend="openai", base_url=server, model="tiny", tokenizer=str(tiny_lm_path),
        api_key_env="RAGSYS_TEST_TOKEN", max_new_tokens=12, system_prompt="Cite [n]. Else: {abstain_text}",
    )  # fmt: skip
    gen = config.model_copy(update=overrides).build()
    assert isinstance(gen, OpenAIGenerator)
    return gen


def test_answers_stream_and_join_to_the_answer(server: str, tiny_lm_path: Path, token: None) -> None:
    gen = _gen(server, tiny_lm_path)
    pieces = list(gen.generate_stream(QUESTION, HITS))
    answer = gen.generate(QUESTION, HITS)
    assert answer.backend == "openai" and answer.contexts == tuple(HITS)
    assert answer.text and "".join(pieces) == answer.text  # greedy: the same text both times
    assert 0 < answer.timings["new_tokens"] <= 12 and answer.timings["prompt_tokens"] > 0


def test_stop_strings_cut_the_answer(server: str, tiny_lm_path: Path, token: None) -> None:
    full = _gen(server, tiny_lm_path, stop=()).generate(QUESTION, HITS)
    at = next(i for i in range(3, len(full.text) - 3) if full.text[i : i + 2].isalnum())
    stop = full.text[at : at + 2]
    cut = _gen(server, tiny_lm_path, stop=(stop,)).generate(QUESTION, HITS)
    assert cut.text == full.text[: full.text.index(stop)].strip()


def test_no_passages_abstain_without_a_request(tiny_lm_path: Path) -> None:
    config = GeneratorConfig(backend="openai", base_url="http://127.0.0.1:9/v1", tokenizer=str(tiny_lm_path))
    answer = config.build().generate(QUESTION, [])
    assert answer.abstained and answer.text == config.abstain_text


def test_a_wrong_token_is_a_clear_error(
    server: str, tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGSYS_TEST_TOKEN", "wrong")
    with pytest.raises(RemoteGenerationError, match="RAGSYS_TEST_TOKEN"):
        _gen(server, tiny_lm_path).generate(QUESTION, HITS)


def test_an_unreachable_server_is_a_clear_error(tiny_lm_path: Path) -> None:
    gen = _gen(f"http://127.0.0.1:{_free_port()}/v1", tiny_lm_path)
    with pytest.raises(RemoteGenerationError, match="cannot reach"):
        gen.generate(QUESTION, HITS)


def test_the_label_step_picks_an_option(server: str, tiny_lm_path: Path, token: None) -> None:
    gen = _gen(server, tiny_lm_path)
    label, scores = gen.choose(gen.generate(QUESTION, HITS), ["yes", "no", "maybe"])
    assert label in ("yes", "no", "maybe") and len(scores) == 3


def test_training_refuses_a_remote_generator() -> None:
    with pytest.raises(ValueError, match="local weights"):
        GeneratorConfig(backend="openai", base_url="http://x/v1").for_training()
