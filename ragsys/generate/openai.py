"""An OpenAI-compatible HTTP backend: a larger model served by vLLM, llama.cpp's server or Ollama.

The prompt is the one the local backends build (the same packing, numbered passages and
system prompt), sent as chat messages to `POST {base_url}/chat/completions` with
`"stream": true`; the server applies its model's own chat template. Passages are packed
with a local tokenizer's counts (`GeneratorConfig.tokenizer`, by default the bundled
SmolLM2's): the remote model's tokenizer is not available, and for English BPE vocabularies
the counts differ by a few percent, well inside the default budget's slack.

Stop strings are applied here, on the streamed text, exactly as the local backends apply them
(`watch.visible_text`), and also sent to the server (the first four; OpenAI's API takes at
most four) so it can stop early. Citations and abstention are read by the same code as for
the local backends. The label step asks for the answer word greedily and, where the server
returns `top_logprobs`, scores each option by its first token's log-probability; options the
server did not list get -inf.

Training needs local weights: `GeneratorConfig.for_training()` refuses this backend.

Example:
    >>> url = "http://127.0.0.1:8080/v1"
    >>> gen = GeneratorConfig(backend="openai", base_url=url, model="m").build()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragsys.generate.config import GeneratorConfig
from ragsys.generate.labels import FOLLOW_UP, pick
from ragsys.generate.local import PromptedGenerator
from ragsys.generate.prompt import Prompt, user_message
from ragsys.generate.watch import visible_text
from ragsys.protocols import OnText
from ragsys.types import Answer

if TYPE_CHECKING:
    import httpx

MAX_API_STOPS = 4
LOGPROB_OPTIONS = 20


class RemoteGenerationError(RuntimeError):
    """The server could not be reached or refused the request; the message names it and the fix."""


def build_openai(config: GeneratorConfig) -> OpenAIGenerator:
    from ragsys.generate.chat_tokenizer import chat_tokenizer
    from ragsys.models import local_folder

    return OpenAIGenerator(config, chat_tokenizer(local_folder(config.tokenizer or "smollm2-135m")))


class OpenAIGenerator(PromptedGenerator):
    """Answers through an OpenAI-compatible chat completions endpoint, streaming.

    Example:
        >>> gen = OpenAIGenerator(config, tokenizer)  # doctest: +SKIP
        >>> "".join(gen.generate_stream("What grew?", hits))  # doctest: +SKIP
    """

    @property
    def backend(self) -> str:
        return "openai"

    def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
        """The label step over HTTP: greedy one-word reply, scored by top log-probs where given."""
        prompt = self.prompt(answer.question, answer.contexts)
        follow = FOLLOW_UP.format(options=", ".join(options[:-1]) + " or " + options[-1])
        messages = self._messages(prompt, answer.question) + [
            {"role": "assistant", "content": answer.text},
            {"role": "user", "content": follow},
        ]
        body = self._body(messages, stream=False) | {
            "max_tokens": 3, "temperature": 0.0, "logprobs": True, "top_logprobs": LOGPROB_OPTIONS,
        }  # fmt: skip
        with self._client() as client:
            reply = self._post(client, body).json()
        choice = reply["choices"][0]
        scores = _option_scores(choice.get("logprobs"), options)
        if all(s == float("-inf") for s in scores):  # no log-probs: read the word the model said
            said = (choice.get("message", {}).get("content") or "").strip().lower()
            scores = [0.0 if said.startswith(o.lower()) else float("-inf") for o in options]
        return pick(options, scores, self.config.label_bias), scores

    # --- one request --------------------------------------------------------------------

    def _complete(
        self, prompt: Prompt, query: str, on_text: OnText | None, cancel: threading.Event | None
    ) -> tuple[str, dict[str, float]]:
        return self._stream_completion(self._messages(prompt, query), on_text, cancel)

    def _messages(self, prompt: Prompt, query: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.config.system_text()},
            {"role": "user", "content": user_message(prompt.passages, query)},
        ]

    def _stream_completion(
        self, messages: list[dict[str, str]], on_text: OnText | None, cancel: threading.Event | None
    ) -> tuple[str, dict[str, float]]:
        stops, raw, sent, chunks = self.config.stop, "", 0, 0
        started, first = time.perf_counter(), None
        with self._client() as client, self._stream(client, self._body(messages, stream=True)) as response:
            for delta in _deltas(response):
                first = first or time.perf_counter()
                raw, chunks = raw + delta, chunks + 1
                shown, stopped = visible_text(raw, stops, final=False)
                if on_text is not None and len(shown) > sent:
                    on_text(shown[sent:])
                sent = max(sent, len(shown))
                if stopped or (cancel is not None and cancel.is_set()):
                    break
        elapsed = time.perf_counter() - started
        text = visible_text(raw, stops, final=True)[0]
        if on_text is not None and len(text) > sent:
            on_text(text[sent:])
        return text, {
            "new_tokens": float(chunks),  # one streamed delta per token on vLLM and llama.cpp
            "ttft_s": (first or started + elapsed) - started,
            "generate_s": elapsed,
            "tokens_per_s": chunks / elapsed if elapsed > 0 else 0.0,
        }

    def _body(self, messages: list[dict[str, str]], *, stream: bool) -> dict[str, Any]:
        c = self.config
        body: dict[str, Any] = {
            "model": c.model,
            "messages": messages,
            "max_tokens": c.max_new_tokens,
            "stream": stream,
            "stop": [s for s in c.stop if s][:MAX_API_STOPS],
            "seed": c.seed,
        }
        body |= {"temperature": c.temperature, "top_p": c.top_p} if c.do_sample else {"temperature": 0.0}
        return body

    def _client(self) -> httpx.Client:
        import httpx

        headers = {"Content-Type": "application/json"}
        token = os.environ.get(self.config.api_key_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(
            base_url=str(self.config.base_url).rstrip("/"), headers=headers, timeout=self.config.timeout_s
        )

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
        import httpx

        try:
            response = client.post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e
        _check(response, self.config)
        return response

    def _stream(self, client: httpx.Client, body: dict[str, Any]) -> Any:
        return _Streaming(client, body, self)

    def _unreachable(self, e: Exception) -> RemoteGenerationError:
        return RemoteGenerationError(
            f"cannot reach the generator server at {self.config.base_url}: {e}. Start it (e.g. "
            "`python -m llama_cpp.server --model M.gguf`, `vllm serve M`) or fix GeneratorConfig.base_url"
        )


class _Streaming:
    """`client.stream(...)` with the errors turned into `RemoteGenerationError`."""

    def __init__(self, client: httpx.Client, body: dict[str, Any], owner: OpenAIGenerator) -> None:
        self._client, self._body, self._owner = client, body, owner
        self._cm: Any = None

    def __enter__(self) -> httpx.Response:
        import httpx

        self._cm = self._client.stream("POST", "/chat/completions", json=self._body)
        try:
            response: httpx.Response = self._cm.__enter__()
        except httpx.HTTPError as e:
            raise self._owner._unreachable(e) from e
        if response.status_code >= 400:
            response.read()
            _check(response, self._owner.config)
        return response

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def _check(response: httpx.Response, config: GeneratorConfig) -> None:
    if response.status_code in (401, 403):
        raise RemoteGenerationError(
            f"{config.base_url} refused the request ({response.status_code}): set the token in "
            f"${config.api_key_env}"
        )
    if response.status_code >= 400:
        raise RemoteGenerationError(
            f"{config.base_url} answered {response.status_code}: {response.text[:300]} "
            f"(is model {config.model!r} served there?)"
        )


def _deltas(response: httpx.Response) -> Iterator[str]:
    """Text deltas of a server-sent-events chat completion stream."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        for choice in event.get("choices", ()):
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text


def _option_scores(logprobs: Any, options: Sequence[str]) -> list[float]:
    """Each option's log-probability as the reply's first token, from the server's top list."""
    scores = [float("-inf")] * len(options)
    content = (logprobs or {}).get("content") or []
    if not content:
        return scores
    for entry in content[0].get("top_logprobs") or []:
        token = str(entry.get("token", "")).strip().lower()
        for i, option in enumerate(options):
            if token and option.lower().startswith(token) and scores[i] == float("-inf"):
                scores[i] = float(entry["logprob"])
    return scores
