"""Token counters: chunk bounds are in the embedder's tokens, counted in batches.

Anything callable on a string fits the `TokenCounter` protocol; counters that also offer
`count_many` are asked for a whole batch at once (`count_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ragsys.protocols import TokenCounter

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class HFTokenCounter:
    """Counts tokens as a `transformers` tokenizer does, without special tokens.

    `count_many` tokenizes a batch in one call. For a fast tokenizer it calls a private copy
    of the Rust backend with truncation and padding off (a tokenizer.json may switch them on,
    and the `transformers` wrapper resets them per call) through `encode_batch_fast`, which
    skips offsets: about twice the speed of the wrapper, with the same counts.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, batch_size: int = 2048) -> None:
        self._tokenizer, self._batch_size = tokenizer, batch_size
        self._backend = _untruncated_backend(tokenizer)

    def __call__(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        for i in range(0, len(texts), self._batch_size):
            counts.extend(self._count_batch(list(texts[i : i + self._batch_size])))
        return counts

    def _count_batch(self, batch: list[str]) -> list[int]:
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            return [len(e.ids) for e in encode(batch, add_special_tokens=False)]
        encoded = self._tokenizer(
            batch,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # long texts are counted, not fed to a model: no length warning
        )
        return [len(ids) for ids in encoded["input_ids"]]


def _untruncated_backend(tokenizer: PreTrainedTokenizerBase) -> Any:
    """A copy of a fast tokenizer's Rust backend that never truncates or pads; None if slow."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    copy = type(backend).from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def hf_token_counter(tokenizer: PreTrainedTokenizerBase) -> HFTokenCounter:
    """A `TokenCounter` (with `count_many`) over a `transformers` tokenizer."""
    return HFTokenCounter(tokenizer)


def whitespace_token_counter(text: str) -> int:
    """Whitespace-separated words: exact and additive, for tests and tokenizer-free setups."""
    return len(text.split())


def count_all(count_tokens: TokenCounter, texts: Sequence[str]) -> list[int]:
    """Counts in one batch when the counter offers `count_many`, else one call per text."""
    many: Callable[[Sequence[str]], list[int]] | None = getattr(count_tokens, "count_many", None)
    return list(many(texts)) if many is not None else [count_tokens(t) for t in texts]
