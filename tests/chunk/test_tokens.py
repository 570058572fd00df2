"""Token counters: Hugging Face tokenizers counted in full, without special tokens."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from ragsys.chunk.tokens import HFTokenCounter, hf_token_counter


def test_hf_token_counter_counts_without_special_tokens_or_truncation(
    wordpiece: PreTrainedTokenizerFast,
) -> None:
    texts = [
        "Aspirin reduces the risk.",
        "",
        "Revenue grew ten percent compared with the prior quarter. " * 40,
    ]
    expected = [len(wordpiece(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts]
    assert expected[2] > wordpiece.model_max_length  # counted in full, not truncated
    wordpiece.backend_tokenizer.enable_truncation(8)  # as some tokenizer.json files ship
    try:
        counter = hf_token_counter(wordpiece)
        assert isinstance(counter, HFTokenCounter) and counter.count_many(texts) == expected
        assert [counter(t) for t in texts] == expected and expected[0] > 0
    finally:
        wordpiece.backend_tokenizer.no_truncation()


def test_hf_token_counter_falls_back_to_the_tokenizer_call_without_a_rust_backend() -> None:
    class SlowTokenizer:  # the slice of a slow `transformers` tokenizer that the counter uses
        def __call__(self, texts: list[str], **kwargs: object) -> dict[str, list[list[int]]]:
            assert kwargs["add_special_tokens"] is False
            return {"input_ids": [[0] * len(t.split()) for t in texts]}

    counter = hf_token_counter(SlowTokenizer())  # type: ignore[arg-type]
    assert counter.count_many(["a b c", "d"]) == [3, 1] and counter("x y") == 2
