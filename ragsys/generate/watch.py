"""Reading a generation as it happens: the answer text so far, cut at stop strings, streamed.

`visible_text` is pure (what part of the decoded text is certain); `TextWatch` is the
stopping criterion `model.generate` calls after every new token. It is the only per-token
work ragsys adds to `transformers`' loop, so streaming costs no more than not streaming
(eval/bench/generate.py measures it). Any backend that decodes token by token can reuse both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ragsys.generate.prompt import ChatTokenizer, decode
from ragsys.generate.repeats import repeating
from ragsys.protocols import OnText

if TYPE_CHECKING:
    import torch


class Guard(Protocol):
    """A decode-time rule over the next token (`figure_guard`, `citation_guard`): of `ranked`
    (the model's best tokens, best first), the ones to mask given the answer `text` so far."""

    def blocked(self, text: str, ranked: Sequence[int], greedy: bool) -> list[int]: ...


def masked_before_allowed(
    allows: Callable[[str, int], bool], text: str, ranked: Sequence[int], greedy: bool
) -> list[int]:
    """What a guard masks of `ranked` (the model's best tokens, best first) after the answer
    `text`: every token it `allows` not, up to the first it allows (greedy: that one is then the
    argmax) or all of them (sampling); none when it allows none of them, so that a step where
    the guard has nothing to offer among the model's best goes unguarded.

        >>> masked_before_allowed(lambda text, t: t % 2 == 0, "", [1, 3, 4, 5], greedy=True)
        [1, 3]
        >>> masked_before_allowed(lambda text, t: t % 2 == 0, "", [1, 3], greedy=True)
        []
    """
    out: list[int] = []
    for token in ranked:
        if allows(text, token):
            if greedy:
                return out
            continue
        out.append(token)
    return out if len(out) < len(ranked) else []


def visible_text(text: str, stops: Sequence[str], final: bool) -> tuple[str, bool]:
    """The part of the decoded answer that is certain, and whether a stop string was seen.

    Cut at the earliest stop string; strip surrounding whitespace. Until generation ends,
    also hold back a trailing half-decoded character, a tail that could begin a stop
    string, and trailing whitespace (it would be stripped if nothing followed). So each
    call's result extends the previous one, and streamed pieces join to the final text.
    """
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    stopped = bool(cuts)
    if stopped:
        text = text[: min(cuts)]
    text = text.lstrip()
    if final or stopped:
        return text.rstrip(), stopped
    text = text.rstrip("\ufffd")
    text = text[: len(text) - _stop_prefix_len(text, stops)]
    return text.rstrip(), False


def _stop_prefix_len(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of some stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


class TextWatch:
    """Called by `generate` after each new token: times it, decodes, stops, streams.

    Used as a stopping criterion (anything callable fits `StoppingCriteriaList`) rather
    than as a streamer, because `transformers` may report tokens to a streamer a step late
    (its deferred stop check), while criteria see every step.
    """

    def __init__(
        self,
        tokenizer: ChatTokenizer,
        prompt_len: int,
        stops: Sequence[str],
        on_text: OnText | None = None,
        cancel: threading.Event | None = None,
        guards: Sequence[Guard] = (),
        no_repeat_ngram: int = 0,
    ) -> None:
        self._tokenizer, self._stops, self._on_text = tokenizer, tuple(stops), on_text
        self._cancel = cancel or threading.Event()
        self._seen, self._sent = prompt_len, 0
        self._ids: list[int] = []
        self.first_token_at: float | None = None
        self.text = ""  # the answer decoded so far
        self.guards = tuple(guards)  # the decoder masks the tokens they block, in turn
        self.no_repeat_ngram = no_repeat_ngram  # ... and those repeating the answer's own runs (`repeats`)

    @property
    def steers(self) -> bool:
        """Whether the decoder must ask `blocked` at each step (a guard or a repeat ban is on)."""
        return bool(self.guards) or self.no_repeat_ngram > 0

    def blocked(self, ranked: Sequence[int], greedy: bool) -> list[int]:
        """Tokens to mask at this step: every token that would repeat an `no_repeat_ngram`-token run
        of the answer, then those of `ranked` (best first) each guard blocks among what the
        previous ones left."""
        out = sorted(repeating(self._ids, self.no_repeat_ngram))
        masked = set(out)
        for guard in self.guards:
            left = [t for t in ranked if t not in masked]
            more = guard.blocked(self.text, left, greedy)
            out += more
            masked.update(more)
        return out

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        done = self.push(input_ids[0, self._seen :].tolist())
        self._seen = input_ids.shape[1]
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    def push(self, new_ids: Sequence[int]) -> bool:
        """New token ids from a decoder's loop (llama.cpp's calls this directly); True: stop now."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self._ids.extend(new_ids)
        self.text = self._decode(self._ids)
        stopped = self._emit(self.text, final=False)
        return stopped or self._cancel.is_set()

    def finish(self, new_ids: list[int]) -> str:
        """The final answer text from the tokens `generate` returned; flushes the rest to the callback."""
        text = self._decode(new_ids)
        self._emit(text, final=True)
        return visible_text(text, self._stops, final=True)[0]

    def _decode(self, ids: list[int]) -> str:
        return decode(self._tokenizer, ids, skip_special_tokens=True)

    def _emit(self, text: str, final: bool) -> bool:
        shown, stopped = visible_text(text, self._stops, final)
        if self._on_text is not None and len(shown) > self._sent:
            self._on_text(shown[self._sent :])
        self._sent = max(self._sent, len(shown))
        return stopped
