"""`GeneratorConfig`: which model answers, on which backend, with which prompt and decoding.

Backends (`backend`):

* `"llama-cpp"`: llama.cpp through `llama-cpp-python`, on a Q8_0 GGUF made once from the
  model (and its merged LoRA adapter) and cached by content digest (`ragsys.generate.llama`).
  On the project's 2-core CPU it decodes SmolLM2-135M about 4x faster than transformers fp32
  (eval/bench/generate.py; docs/results.md). CTranslate2 int8 was measured too and ran at
  transformers' speed on this model, so llama.cpp is the quantized backend.
* `"transformers"`: the model in fp32 through `transformers`' `generate`; what trainers use.
* `"openai"`: any OpenAI-compatible HTTP server (vLLM, llama.cpp's server, Ollama) at
  `base_url`, serving `model` (`ragsys.generate.openai`); the token, if any, is read from
  the environment variable named by `api_key_env`. Inference only.
* `"auto"` (the default): llama.cpp when it is installed and can run the model, else
  transformers, saying why on stderr.

Greedy decoding by default, so answers are reproducible; with `do_sample` the draws are
seeded by `seed`. `min_new_tokens` exists for benchmarks that need equal lengths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ragsys.generate.tables import TableFormat
from ragsys.types import Frozen

if TYPE_CHECKING:
    from ragsys.protocols import Generator

DEFAULT_ABSTAIN = "I cannot answer this from the documents."
# "{abstain_text}" is replaced by the config's phrase, so the two cannot drift apart.
DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages the user gives you. "
    "After each sentence of your answer, cite the passage it comes from by its number "
    "in square brackets, like [1] or [2][3]. Keep the answer short. "
    "If the passages do not contain the answer, reply exactly: {abstain_text}"
)
# Small models often continue by inventing the next turn; cut there. The chat markers only
# matter for a tokenizer that does not mark them special (decoding drops special tokens).
DEFAULT_STOP = ("\nQuestion:", "\nPassages:", "<|im_end|>", "<|endoftext|>")

Backend = Literal["auto", "transformers", "llama-cpp", "openai"]


class GeneratorConfig(Frozen):
    """A causal LM that answers from numbered passages, optionally with a LoRA adapter merged in.

    Example:
        >>> GeneratorConfig().backend
        'auto'
        >>> GeneratorConfig(backend="openai", base_url="http://127.0.0.1:8080/v1", model="qwen").model
        'qwen'
    """

    kind: Literal["hf"] = "hf"
    model: str = "smollm2-135m"
    adapter: str | None = None
    backend: Backend = "auto"
    base_url: str | None = None  # the OpenAI-compatible server's URL, up to /v1 (backend "openai")
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the server's token, if any
    timeout_s: float = Field(default=120.0, gt=0)  # one HTTP request (backend "openai")
    # The tokenizer that counts the context budget when the model is remote (backend "openai");
    # None: the bundled SmolLM2's, a close count for any English BPE tokenizer.
    tokenizer: str | None = None
    threads: int | None = Field(default=None, ge=1)  # llama.cpp threads; None: the CPUs this process may use
    context_tokens: int = Field(default=1024, ge=32)
    # How markdown tables in passages reach the model: "rows" rewrites each row on one line with
    # its values beside their column headers (ragsys.generate.tables), which a small model reads
    # far better than pipes; "markdown" passes them as extracted.
    tables: TableFormat = "rows"  # ~4 chunks of 256: a 135M model does better with few
    # At most this many of the retrieved passages reach the prompt (None: as many as fit in
    # context_tokens). `ragsys tune`'s context stage chooses it on train answers.
    passages: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=192, ge=1)
    # "copied": every number the answer states (but one- or two-digit non-percentages) is one a
    # passage or the question states, character for character (`figure_guard`); "free": whatever
    # the model writes.
    # Local backends only (a remote server's decoding is not ours to steer).
    figures: Literal["free", "copied"] = "free"
    # n > 0: no next token may repeat an n-token run the answer already holds (its own tokens, not
    # the prompt's: copying from a passage stays free), so a looping answer must move on
    # (`repeats.py`); 0: off. Local backends only.
    no_repeat_ngram: int = Field(default=0, ge=0)
    # "copied": an answer that cites nothing and does not abstain is given the [n] of the passages
    # it was drawn from (most of its word trigrams; `attribution.py`); "scored" (the default):
    # also, when no passage holds its words, the [n] the model itself scores likeliest at the end
    # of each of its sentences (local backends; a remote one as "copied"); "off": as written.
    attribution: Literal["off", "copied", "scored"] = "scored"
    # "figures" (the default): a citation written (or, by "scored" attribution, chosen) right
    # after figures names a passage that states them, when one states more of them than another
    # (`citation_guard`); "free": the model's choice. Local backends only.
    citations: Literal["free", "figures"] = "figures"
    min_new_tokens: int = Field(default=0, ge=0)
    do_sample: bool = False
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    stop: tuple[str, ...] = DEFAULT_STOP
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    abstain_text: str = Field(default=DEFAULT_ABSTAIN, min_length=1)
    # Grounded refusal: abstain without generating when the model's mean per-token log-probability
    # of replying `abstain_text` to the prompt is at least this (None: never gate). Calibrated on
    # train questions by `ragsys train abstention`; local backends only (a remote server's
    # log-probabilities are not read for it).
    abstain_threshold: float | None = None
    # The constrained label step's per-option offsets added to the options' log-likelihoods
    # before choosing (`ragsys.generate.labels.pick`), fitted on train answers by
    # `ragsys train labels` so a per-label prior cannot pass for an answer.
    label_bias: tuple[tuple[str, float], ...] = ()

    @model_validator(mode="after")
    def _remote_needs_url(self) -> GeneratorConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url, e.g. 'http://127.0.0.1:8080/v1'")
        if self.backend == "openai" and self.adapter is not None:
            raise ValueError("backend 'openai' serves a remote model: a local LoRA adapter cannot apply")
        return self

    def system_text(self) -> str:
        return self.system_prompt.replace("{abstain_text}", self.abstain_text)

    def build(self) -> Generator:
        """Loads the model on its backend ("auto": llama.cpp where it can run, else transformers)."""
        if self.backend == "openai":
            from ragsys.generate.openai import build_openai

            return build_openai(self)
        if self.backend in ("auto", "llama-cpp"):
            from ragsys.generate.llama import build_llama

            fast = build_llama(self, required=self.backend == "llama-cpp")
            if fast is not None:
                return fast
        from ragsys.generate.hf import build_hf

        return build_hf(self)

    def resolved_backend(self) -> str:
        """The backend `build()` will try first here ("auto": llama.cpp where it is installed);
        `ragsys inspect` reports it. An answer's `backend` says what actually ran."""
        if self.backend in ("openai", "transformers"):
            return self.backend
        import importlib.util

        return "llama-cpp" if importlib.util.find_spec("llama_cpp") is not None else "transformers"

    def for_training(self) -> GeneratorConfig:
        """The same generator on transformers: trainers and LM supervision need its torch weights.
        (Citations are traced only from an answer's words: see below.)"""
        if self.backend == "openai":
            raise ValueError(
                f"generator {self.model!r} is served over HTTP (backend 'openai'): training and "
                "LM supervision need local weights; declare GeneratorConfig(model=LOCAL_OR_HUB_ID)"
            )
        # A trainer's own answers are data about what the model writes: citations traced by its
        # words at most, not a forward step per sentence on the slow path.
        attribution = "copied" if self.attribution == "scored" else self.attribution
        return self.model_copy(update={"backend": "transformers", "attribution": attribution})
