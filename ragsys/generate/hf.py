"""The transformers backend: the model in fp32 through `model.generate`, on CPU or GPU.

Trainers fine-tune and score these same weights (`HFGenerator.model`), so LM supervision and
own-answer generation inside training stay on this backend; answering elsewhere prefers
llama.cpp (`ragsys.generate.llama`) when it is installed.

`model.generate` runs with a stopping criterion (`ragsys.generate.watch.TextWatch`) that,
after every new token, decodes the answer so far, cuts it at the first stop string and hands
newly certain text to an optional callback.

Example:
    >>> gen = GeneratorConfig(model="smollm2-135m", backend="transformers").build()  # doctest: +SKIP
    >>> answer = gen.generate("What grew?", retriever.retrieve("What grew?", 5))  # doctest: +SKIP
    >>> answer.text, [c.n for c in answer.citations]  # doctest: +SKIP
    ('Revenue grew ten percent [1].', [1])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from ragsys.generate.config import DEFAULT_ABSTAIN, DEFAULT_STOP, DEFAULT_SYSTEM_PROMPT, GeneratorConfig
from ragsys.generate.figure_guard import TOP_K
from ragsys.generate.local import LocalGenerator
from ragsys.generate.prompt import ChatTokenizer
from ragsys.generate.watch import TextWatch

if TYPE_CHECKING:  # torch and transformers load in `build()` and on first use: configs stay cheap
    import torch
    from transformers import PreTrainedModel

__all__ = [
    "DEFAULT_ABSTAIN", "DEFAULT_STOP", "DEFAULT_SYSTEM_PROMPT", "GeneratorConfig", "HFGenerator",
    "TorchDecoder", "build_hf", "load_adapter",
]  # fmt: skip


class CausalLM(Protocol):
    """What the generator needs of a `transformers` causal LM (tests pass fakes)."""

    @property
    def device(self) -> torch.device: ...

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...


def build_hf(config: GeneratorConfig) -> HFGenerator:
    from ragsys.models import ModelLoadError, load_causal_lm

    model, tokenizer = load_causal_lm(config.model)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"model {config.model!r} has no chat template; use an instruction-tuned model "
            "(e.g. smollm2-135m) or set tokenizer.chat_template and save it with the model"
        )
    if config.adapter is not None:
        model = load_adapter(model, config.adapter)
    return HFGenerator(config, cast(CausalLM, model), tokenizer)  # nn.Module hides generate's type


def load_adapter(model: PreTrainedModel, adapter: str) -> PreTrainedModel:
    """Apply a peft LoRA adapter folder (or a shipped adapter's name) and merge it, so inference
    runs at base-model speed."""
    from ragsys.models import ModelLoadError, resolve_adapter

    folder = resolve_adapter(adapter)
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


class TorchDecoder:
    """`model.generate` with the watch as its stopping criterion; options scored by a forward pass."""

    name = "transformers"

    def __init__(self, model: CausalLM, tokenizer: ChatTokenizer) -> None:
        self.model, self._tokenizer = model, tokenizer

    def run(self, prompt_ids: Sequence[int], watch: TextWatch, config: GeneratorConfig) -> list[int]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.model.device)
        guarded = [Guarded(watch, not config.do_sample)] if watch.steers else []
        with torch.inference_mode(), _seeded(config, self.model.device):
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                stopping_criteria=StoppingCriteriaList([watch]),
                logits_processor=LogitsProcessorList(guarded),
                **self._decoding(config),
            )
        new_ids: list[int] = out[0, ids.shape[1] :].tolist()
        return new_ids

    def option_logprobs(self, prefix_ids: Sequence[int], options: Sequence[Sequence[int]]) -> list[float]:
        import torch

        model: Any = self.model
        prefix = list(prefix_ids)
        with torch.inference_mode():
            if all(len(o) == 1 for o in options):  # one forward pass scores every one-token option
                ids = torch.tensor([prefix], dtype=torch.long, device=self.model.device)
                logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
                return [float(logp[o[0]]) for o in options]
            scores: list[float] = []
            for opt in options:
                ids = torch.tensor([prefix + list(opt)], dtype=torch.long, device=self.model.device)
                logits = model(input_ids=ids).logits[0, len(prefix) - 1 : -1].float()
                logp = torch.log_softmax(logits, dim=-1)
                scores.append(float(logp[torch.arange(len(opt)), torch.tensor(list(opt))].sum()))
            return scores

    def _decoding(self, c: GeneratorConfig) -> dict[str, Any]:
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


class Guarded:
    """The watch's masks as a transformers logits processor: the best tokens its guards block
    (`figure_guard`, `citation_guard`) and those repeating the answer's own runs (`repeats`); the
    watch has seen every token before the step."""

    def __init__(self, watch: TextWatch, greedy: bool) -> None:
        self.watch, self.greedy = watch, greedy

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        ranked = torch.topk(scores[0], min(TOP_K, scores.shape[-1])).indices.tolist()
        blocked = self.watch.blocked(ranked, self.greedy)
        if not blocked:
            return scores
        scores = scores.clone()
        scores[0, blocked] = -float("inf")
        return scores


class HFGenerator(LocalGenerator):
    """A `LocalGenerator` on a transformers model; `model` is what trainers fine-tune and score.

    (A subclass only for its constructor and `model`: trainers build it around the model they
    train and score.)

    Example:
        >>> gen = HFGenerator(GeneratorConfig(), model, tokenizer)  # doctest: +SKIP
        >>> gen.generate("What grew?", hits).text  # doctest: +SKIP
    """

    def __init__(self, config: GeneratorConfig, model: CausalLM, tokenizer: ChatTokenizer) -> None:
        super().__init__(config, TorchDecoder(model, tokenizer), tokenizer)
        self._model = model

    @property
    def model(self) -> CausalLM:
        """The loaded model (trainers score and fine-tune the same weights that answer)."""
        return self._model


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
