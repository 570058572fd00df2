"""A generator over a local model: numbered passages in, cited answer out, on any decoder.

What every local backend shares lives here: packing passages into the prompt (`prompt.py`),
streaming and stopping on the decoded text (`watch.py`), reading citations and abstentions
back (`citations.py`) and the constrained label step (`labels.py`). A backend only supplies a
`Decoder`: given prompt token ids, produce new token ids one at a time, telling the watch
after each; and score a few continuations of a prefix. Both backends take token ids made by
the same transformers tokenizer and are decoded by it, so prompts, stop strings, citations
and streamed pieces are identical across backends by construction.

Abstention rule: `Answer.abstained` is True when (a) no context was given, in which case
the model is not called and the answer is `abstain_text`, or (b) the answer text, after
normalization (case, punctuation, quotes, spacing), starts with `abstain_text`, or is
empty. See `ragsys.generate.citations.is_abstention`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from ragsys.generate.attribution import cite_suffix, sentence_ends, suffix_citing
from ragsys.generate.citation_guard import CitationGuard, stated_numbers, stating
from ragsys.generate.citations import is_abstention, parse_citations
from ragsys.generate.figure_guard import FigureGuard
from ragsys.generate.prompt import ChatTokenizer, Prompt, build_prompt, decode
from ragsys.generate.watch import Guard, TextWatch
from ragsys.protocols import OnText
from ragsys.types import Answer, Hit

if TYPE_CHECKING:
    from ragsys.generate.config import GeneratorConfig

NO_WINDOW = 10**8  # tokenizers without a known window report a huge sentinel instead


class Decoder(Protocol):
    """One backend's inference: `transformers` (hf.py) or llama.cpp (llama.py)."""

    name: str  # reported in Answer.timings' "backend" note and by `ragsys ask --json`

    def run(self, prompt_ids: Sequence[int], watch: TextWatch, config: GeneratorConfig) -> list[int]:
        """New token ids after the prompt (end-of-sequence excluded or included: the watch's
        decode skips special tokens), calling `watch.push` after each one until it says stop."""
        ...

    def option_logprobs(self, prefix_ids: Sequence[int], options: Sequence[Sequence[int]]) -> list[float]:
        """Summed log-probability of each option's tokens after the prefix."""
        ...


class PromptedGenerator:
    """What every generator shares, whatever completes its prompt: packing passages, the
    no-passage abstention, streaming in a thread, and reading citations and abstentions back.

    Subclasses say how a prompt is completed (`_complete`) and how the label step scores
    options (`choose`): `LocalGenerator` on a token decoder, `openai.OpenAIGenerator` over HTTP.
    """

    def __init__(self, config: GeneratorConfig, tokenizer: ChatTokenizer) -> None:
        self.config, self._tokenizer = config, tokenizer

    @property
    def backend(self) -> str:
        """The runtime that completes prompts: what `Answer.backend` records."""
        raise NotImplementedError

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
            tables=self.config.tables,
        )

    def generate(self, query: str, context: Sequence[Hit]) -> Answer:
        return self.stream(query, context, on_text=None)

    def stream(self, query: str, context: Sequence[Hit], on_text: OnText | None) -> Answer:
        """Like `generate`, calling `on_text` with each new piece of answer text as it is decoded."""
        return self._answer(query, context, on_text, None)

    def generate_stream(self, query: str, context: Sequence[Hit]) -> Iterator[str]:
        """Answer text pieces as they come; generation runs in a thread and stops if the loop is left."""
        return stream_in_thread(lambda on_text, cancel: self._answer(query, context, on_text, cancel))

    def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
        raise NotImplementedError

    def _complete(
        self, prompt: Prompt, query: str, on_text: OnText | None, cancel: threading.Event | None
    ) -> tuple[str, dict[str, float]]:
        """The answer text for a built prompt (stop strings applied) and its timings."""
        raise NotImplementedError

    def _answer(
        self, query: str, context: Sequence[Hit], on_text: OnText | None, cancel: threading.Event | None
    ) -> Answer:
        if not context:  # nothing to ground an answer in: do not even ask the model
            if on_text is not None:
                on_text(self.config.abstain_text)
            return Answer(
                question=query, text=self.config.abstain_text, abstained=True, timings=no_timings(),
                backend=self.backend,
            )  # fmt: skip
        started = time.perf_counter()
        prompt = self.prompt(query, context)
        built = {"prompt_s": time.perf_counter() - started, "prompt_tokens": float(len(prompt.ids))}
        text, timings = self._complete(prompt, query, on_text, cancel)
        parsed = parse_citations(text, prompt.numbered())
        abstained = is_abstention(text, self.config.abstain_text)
        suffix = ""
        if self.config.attribution != "off" and not parsed.citations and not abstained:
            suffix = self._cite_after(prompt, text)  # attribution.py: why
            if suffix:
                text += suffix
                parsed = parse_citations(text, prompt.numbered())
                if on_text is not None:
                    on_text(suffix)
        return Answer(
            question=query,
            text=text,
            abstained=abstained,
            citations=parsed.citations,
            contexts=tuple(p.hit for p in prompt.passages),  # contexts[n - 1] is passage [n]
            dropped_citations=parsed.dropped,
            timings=built | timings | packing(prompt),
            backend=self.backend,
            cited_after=bool(suffix),
        )

    def _cite_after(self, prompt: Prompt, text: str) -> str:
        """What to append to an uncited answer to cite its sources (" [2][3]"), or "" for none:
        the passages holding its words (`attribution="copied"`); a local model is also asked
        (`"scored"`, `LocalGenerator`)."""
        return cite_suffix(text, [p.text for p in prompt.passages])


class LocalGenerator(PromptedGenerator):
    """A generator on a local model: the prompt's token ids go to a `Decoder`.

    Example:
        >>> gen = GeneratorConfig().build()  # doctest: +SKIP
        >>> for piece in gen.generate_stream("What grew?", hits):  # doctest: +SKIP
        ...     print(piece, end="", flush=True)
    """

    def __init__(self, config: GeneratorConfig, decoder: Decoder, tokenizer: ChatTokenizer) -> None:
        super().__init__(config, tokenizer)
        self.decoder = decoder
        self._pieces: dict[int, str] = {}

    @property
    def backend(self) -> str:
        return self.decoder.name

    def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
        """The constrained final step (`ragsys.generate.labels`): one of `options` given the answer."""
        from ragsys.generate.labels import choose_label

        prompt = self.prompt(answer.question, answer.contexts)
        return choose_label(
            self.decoder, self._tokenizer, self.config.system_text(), prompt.passages, answer.question,
            answer.text, options, self.config.label_bias,
        )  # fmt: skip

    def abstain_logprob(self, prompt: Prompt) -> float:
        """The mean per-token log-probability of the model replying exactly `abstain_text`: the
        answerability signal grounded refusal thresholds (high: the passages do not answer)."""
        ids = self._tokenizer.encode(self.config.abstain_text, add_special_tokens=False)
        return self.decoder.option_logprobs(prompt.ids, [ids])[0] / max(len(ids), 1)

    def _complete(
        self, prompt: Prompt, query: str, on_text: OnText | None, cancel: threading.Event | None
    ) -> tuple[str, dict[str, float]]:
        self._check_window(prompt)
        if self.config.abstain_threshold is not None:
            started = time.perf_counter()
            score = self.abstain_logprob(prompt)
            if score >= self.config.abstain_threshold:  # refuse without generating
                if on_text is not None:
                    on_text(self.config.abstain_text)
                gated = {"new_tokens": 0.0, "ttft_s": 0.0, "generate_s": time.perf_counter() - started}
                return self.config.abstain_text, gated | {"tokens_per_s": 0.0, "abstain_score": score}
        c, guards = self.config, self._guards(prompt, query)
        watch = TextWatch(
            self._tokenizer, len(prompt.ids), c.stop, on_text, cancel, guards, c.no_repeat_ngram
        )
        started = time.perf_counter()
        new_ids = self.decoder.run(prompt.ids, watch, self.config)
        elapsed = time.perf_counter() - started
        text = watch.finish(new_ids)
        first = watch.first_token_at if watch.first_token_at is not None else started + elapsed
        return text, {
            "new_tokens": float(len(new_ids)),
            "ttft_s": first - started,
            "generate_s": elapsed,
            "tokens_per_s": len(new_ids) / elapsed if elapsed > 0 else 0.0,
        }

    def _cite_after(self, prompt: Prompt, text: str) -> str:
        copied = super()._cite_after(prompt, text)
        if copied or self.config.attribution != "scored" or not prompt.passages:
            return copied
        by_figures = self.config.citations == "figures"
        stated = [frozenset(stated_numbers(p.text)) for p in prompt.passages] if by_figures else []
        picked, start = set(), 0
        for end in sentence_ends(text):
            among = stating(text[start:end], stated) if by_figures else frozenset()
            picked.add(self._likeliest_citation(prompt, text[:end], among))
            start = end
        return suffix_citing(sorted(picked))

    def _likeliest_citation(self, prompt: Prompt, head: str, among: frozenset[int] = frozenset()) -> int:
        """The passage number the model scores likeliest to cite right after `head` (" [n]"), of
        those `among` when any are given (`citations="figures"`): the number's one token after
        " [" when every number is one token (one forward step), else the whole " [n]" of each.
        One passage `among` is the answer without asking the model."""
        if len(among) == 1:
            return next(iter(among))
        for close in ("", "]"):
            encoded = [
                self._tokenizer.encode(f"{head} [{n}{close}", add_special_tokens=False)
                for n in range(1, len(prompt.passages) + 1)
            ]
            shared = len(os.path.commonprefix(encoded))
            options = [e[shared:] for e in encoded]
            if close or all(len(o) == 1 for o in options):
                break
        scores = self.decoder.option_logprobs([*prompt.ids, *encoded[0][:shared]], options)
        allowed = [i for i in range(len(scores)) if not among or i + 1 in among]
        return 1 + max(allowed, key=scores.__getitem__)

    def _guards(self, prompt: Prompt, query: str) -> list[Guard]:
        """The figure guard over the prompt's passages and question (`figures="copied"`) and the
        citation guard over its passages (`citations="figures"`), as configured."""
        guards: list[Guard] = []
        if self.config.figures == "copied":
            guards.append(FigureGuard([*(p.text for p in prompt.passages), query], self._piece))
        if self.config.citations == "figures" and prompt.passages:
            guards.append(CitationGuard([p.text for p in prompt.passages], self._piece))
        return guards

    def _piece(self, token: int) -> str:
        """A token's text, remembered (the guard asks for the same few hundred again and again)."""
        if token not in self._pieces:
            self._pieces[token] = decode(self._tokenizer, [token], skip_special_tokens=True)
        return self._pieces[token]

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


def stream_in_thread(answer: Callable[[OnText, threading.Event], object]) -> Iterator[str]:
    """Runs `answer(on_text, cancel)` in a thread and yields the pieces it hands `on_text`;
    an error in the thread is re-raised here, and leaving the loop sets `cancel`."""
    pieces: queue.Queue[str | _End] = queue.Queue()
    cancel = threading.Event()

    def work() -> None:
        error: BaseException | None = None
        try:
            answer(pieces.put, cancel)
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


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def no_timings() -> dict[str, float]:
    keys = ("prompt_s", "prompt_tokens", "new_tokens", "ttft_s", "generate_s", "tokens_per_s")
    return dict.fromkeys(keys, 0.0) | dict.fromkeys(
        ("passages", "passages_dropped", "passages_truncated"), 0.0
    )


def packing(prompt: Prompt) -> dict[str, float]:
    """Context packing counts ride along with the timings: Answer has no other numeric slot."""
    return {
        "passages": float(len(prompt.passages)),
        "passages_dropped": float(prompt.dropped),
        "passages_truncated": float(prompt.truncated),
    }
