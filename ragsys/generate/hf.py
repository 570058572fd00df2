"""Answer generation with a local causal LM: numbered passages in, cited answer out.

One code path serves `generate`, `stream` and `generate_stream`: `model.generate` runs
with a stopping criterion (`ragsys.generate.watch.TextWatch`) that, after every new token,
decodes the answer so far, cuts it at the first stop string and hands newly certain text to
an optional callback.

Abstention rule: `Answer.abstained` is True when (a) no context was given, in which case
the model is not called and the answer is `abstain_text`, or (b) the answer text, after
normalization (case, punctuation, quotes, spacing), starts with `abstain_text`, or is
empty. See `ragsys.generate.citations.is_abstention`.

Example:
    >>> gen = GeneratorConfig(model="smollm2-135m").build()  # doctest: +SKIP
    >>> answer = gen.generate("What grew?", retriever.retrieve("What grew?", 5))  # doctest: +SKIP
    >>> answer.text, [c.n for c in answer.citations]  # doctest: +SKIP
    ('Revenue grew ten percent [1].', [1])
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from pydantic import Field

from ragsys.generate.citations import is_abstention, parse_citations
from ragsys.generate.prompt import ChatTokenizer, Prompt, build_prompt
from ragsys.generate.watch import TextWatch
from ragsys.protocols import Generator, OnText
from ragsys.types import Answer, Frozen, Hit

if TYPE_CHECKING:  # torch and transformers load in `build()` and on first use: configs stay cheap
    import torch
    from transformers import PreTrainedModel

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

NO_WINDOW = 10**8  # tokenizers without a known window report a huge sentinel instead


class CausalLM(Protocol):
    """What the generator needs of a `transformers` causal LM (tests pass fakes)."""

    @property
    def device(self) -> torch.device: ...

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...


class GeneratorConfig(Frozen):
    """A local Hugging Face causal LM, optionally with a LoRA adapter merged in.

    Greedy decoding by default, so answers are reproducible; with `do_sample` the draws
    are seeded by `seed`. `min_new_tokens` exists for benchmarks that need equal lengths.
    """

    kind: Literal["hf"] = "hf"
    model: str = "smollm2-135m"
    adapter: str | None = None
    context_tokens: int = Field(default=1024, ge=32)  # ~4 chunks of 256: a 135M model does better with few
    # At most this many of the retrieved passages reach the prompt (None: as many as fit in
    # context_tokens). `ragsys tune`'s context stage chooses it on train answers.
    passages: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=192, ge=1)
    min_new_tokens: int = Field(default=0, ge=0)
    do_sample: bool = False
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    stop: tuple[str, ...] = DEFAULT_STOP
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    abstain_text: str = Field(default=DEFAULT_ABSTAIN, min_length=1)

    def system_text(self) -> str:
        return self.system_prompt.replace("{abstain_text}", self.abstain_text)

    def build(self) -> HFGenerator:
        from ragsys.models import ModelLoadError, load_causal_lm

        model, tokenizer = load_causal_lm(self.model)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelLoadError(
                f"model {self.model!r} has no chat template; use an instruction-tuned model "
                "(e.g. smollm2-135m) or set tokenizer.chat_template and save it with the model"
            )
        if self.adapter is not None:
            model = load_adapter(model, self.adapter)
        return HFGenerator(self, cast(CausalLM, model), tokenizer)  # nn.Module hides generate's type


def load_adapter(model: PreTrainedModel, adapter: str) -> PreTrainedModel:
    """Apply a peft LoRA adapter folder and merge it, so inference runs at base-model speed."""
    from ragsys.models import ModelLoadError

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ModelLoadError(f"adapter {adapter!r} is not a peft adapter folder (no adapter_config.json)")
    if not (folder / "adapter_model.safetensors").is_file():  # else peft would unpickle adapter_model.bin
        raise ModelLoadError(
            f"adapter {adapter!r} has no adapter_model.safetensors, and ragsys never unpickles weights; "
            "re-save it with `model.save_pretrained(folder)` (peft writes safetensors by default)"
        )
    from peft import PeftModel

    merged: PreTrainedModel = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    merged.train(False)
    return merged


class HFGenerator:
    """Packs passages, prompts the model through its chat template, and reads the answer back.

    Example:
        >>> gen = HFGenerator(GeneratorConfig(), model, tokenizer)  # doctest: +SKIP
        >>> for piece in gen.generate_stream("What grew?", hits):  # doctest: +SKIP
        ...     print(piece, end="", flush=True)
    """

    def __init__(self, config: GeneratorConfig, model: CausalLM, tokenizer: ChatTokenizer) -> None:
        self.config, self._model, self._tokenizer = config, model, tokenizer

    @property
    def model(self) -> CausalLM:
        """The loaded model (trainers score and fine-tune the same weights that answer)."""
        return self._model

    @property
    def tokenizer(self) -> ChatTokenizer:
        return self._tokenizer

    def prompt(self, query: str, context: Sequence[Hit]) -> Prompt:
        """The chat prompt: the first `config.passages` hits (all when None) that fit in
        `config.context_tokens`, numbered [1], [2], ... in the order given."""
        return build_prompt(
            query,
            context[: self.config.passages] if self.config.passages else context,
            self._tokenizer,
            system_prompt=self.config.system_text(),
            context_tokens=self.config.context_tokens,
        )

    def generate(self, query: str, context: Sequence[Hit]) -> Answer:
        return self.stream(query, context, on_text=None)

    def stream(self, query: str, context: Sequence[Hit], on_text: OnText | None) -> Answer:
        """Like `generate`, calling `on_text` with each new piece of answer text as it is decoded."""
        return self._answer(query, context, on_text, None)

    def generate_stream(self, query: str, context: Sequence[Hit]) -> Iterator[str]:
        """Answer text pieces as they come; generation runs in a thread and stops if the loop is left."""
        pieces: queue.Queue[str | _End] = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            error: BaseException | None = None
            try:
                self._answer(query, context, pieces.put, cancel)
            except BaseException as e:  # handed to the consumer, re-raised there
                error = e
            pieces.put(_End(error))

        thread = threading.Thread(target=work, name="ragsys-generate", daemon=True)
        thread.start()
        try:
            while not isinstance(item := pieces.get(), _End):
                yield item
            if item.error is not None:
                raise item.error
        finally:
            cancel.set()
            thread.join()

    def _answer(
        self, query: str, context: Sequence[Hit], on_text: OnText | None, cancel: threading.Event | None
    ) -> Answer:
        if not context:  # nothing to ground an answer in: do not even ask the model
            if on_text is not None:
                on_text(self.config.abstain_text)
            return Answer(
                question=query, text=self.config.abstain_text, abstained=True, timings=_no_timings()
            )
        started = time.perf_counter()
        prompt = self.prompt(query, context)
        self._check_window(prompt)
        watch = TextWatch(self._tokenizer, len(prompt.ids), self.config.stop, on_text, cancel)
        text, timings = self._run(prompt, watch, time.perf_counter() - started)
        parsed = parse_citations(text, prompt.numbered())
        return Answer(
            question=query,
            text=text,
            abstained=is_abstention(text, self.config.abstain_text),
            citations=parsed.citations,
            contexts=tuple(p.hit for p in prompt.passages),  # contexts[n - 1] is passage [n]
            dropped_citations=parsed.dropped,
            timings=timings | _packing(prompt),
        )

    def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
        """The constrained final step (`ragsys.generate.labels`): one of `options` given the answer."""
        from ragsys.generate.labels import choose_label

        prompt = self.prompt(answer.question, answer.contexts)
        return choose_label(
            self._model, self._tokenizer, self.config.system_text(), prompt.passages, answer.question,
            answer.text, options,
        )  # fmt: skip

    def _check_window(self, prompt: Prompt) -> None:
        """Fail loudly rather than let positions past the model's window produce garbage."""
        window = getattr(self._tokenizer, "model_max_length", None)
        needed = len(prompt.ids) + self.config.max_new_tokens
        if isinstance(window, int) and window < NO_WINDOW and needed > window:
            raise ValueError(
                f"the prompt ({len(prompt.ids)} tokens) plus max_new_tokens ({self.config.max_new_tokens}) "
                f"exceeds the model's {window}-token window; lower GeneratorConfig.context_tokens "
                "or max_new_tokens, or shorten the system prompt"
            )

    def _run(self, prompt: Prompt, watch: TextWatch, prompt_s: float) -> tuple[str, dict[str, float]]:
        import torch
        from transformers import StoppingCriteriaList

        ids = torch.tensor([prompt.ids], dtype=torch.long, device=self._model.device)
        started = time.perf_counter()
        with torch.inference_mode(), _seeded(self.config, self._model.device):
            out = self._model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                stopping_criteria=StoppingCriteriaList([watch]),
                **self._decoding(),
            )
        elapsed = time.perf_counter() - started
        new_ids: list[int] = out[0, ids.shape[1] :].tolist()
        text = watch.finish(new_ids)
        first = watch.first_token_at if watch.first_token_at is not None else started + elapsed
        return text, {
            "prompt_s": prompt_s,
            "prompt_tokens": float(len(prompt.ids)),
            "new_tokens": float(len(new_ids)),
            "ttft_s": first - started,
            "generate_s": elapsed,
            "tokens_per_s": len(new_ids) / elapsed if elapsed > 0 else 0.0,
        }

    def _decoding(self) -> dict[str, Any]:
        c = self.config
        pad = getattr(self._tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(self._tokenizer, "eos_token_id", None)
        kwargs: dict[str, Any] = {
            "max_new_tokens": c.max_new_tokens,
            "min_new_tokens": c.min_new_tokens,
            "do_sample": c.do_sample,
            "pad_token_id": pad,
        }
        if c.do_sample:  # pure nucleus sampling: no top-k (transformers would default it to 50)
            kwargs |= {"temperature": c.temperature, "top_p": c.top_p, "top_k": 0}
        return kwargs


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


@contextmanager
def _seeded(config: GeneratorConfig, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG for one sampled generation and restore it after; greedy leaves it alone.

    `generate` draws from the global generator (it takes no `torch.Generator`), so this is
    the narrowest scope that makes sampling reproducible without leaking the seed. Two
    sampled generations running at once in different threads would share that generator.
    """
    if not config.do_sample:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        yield


def _no_timings() -> dict[str, float]:
    keys = ("prompt_s", "prompt_tokens", "new_tokens", "ttft_s", "generate_s", "tokens_per_s")
    return dict.fromkeys(keys, 0.0) | dict.fromkeys(
        ("passages", "passages_dropped", "passages_truncated"), 0.0
    )


def _packing(prompt: Prompt) -> dict[str, float]:
    """Context packing counts ride along with the timings: Answer has no other numeric slot."""
    return {
        "passages": float(len(prompt.passages)),
        "passages_dropped": float(prompt.dropped),
        "passages_truncated": float(prompt.truncated),
    }


def as_hf_generator(generator: Generator | None) -> HFGenerator | None:
    """The transformers generator behind a pipeline, or None for another backend: trainers that
    need its weights and tokenizer (LM supervision scores passages by its likelihood) ask here."""
    return generator if isinstance(generator, HFGenerator) else None
