"""A constrained final step: after the free-text answer, the model picks one of a few
labels (PubMedQA's yes / no / maybe) by log-likelihood, instead of a rule reading the
label off the answer text. The model sees the same passages and question, its own
answer, and a one-line follow-up asking for exactly one of the options.

A small model's option scores carry a per-label prior (SmolLM2 chose "no" 343 times in 500
PubMedQA answers, "maybe" never). `GeneratorConfig.label_bias` adds a calibrated offset per
option before the choice (`pick`); `ragsys.train.labels` fits it on train answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ragsys.generate.prompt import ChatTokenizer, user_message

FOLLOW_UP = "Based on the passages, answer the question with exactly one word: {options}."


def label_prompt(
    tokenizer: ChatTokenizer, system: str, user: str, answer: str, options: Sequence[str]
) -> str:
    follow = FOLLOW_UP.format(options=", ".join(options[:-1]) + " or " + options[-1])
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": follow},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):
        raise TypeError("apply_chat_template(tokenize=False) did not return a string")
    return text


class OptionScorer(Protocol):
    """What the label step needs of a backend (`ragsys.generate.local.Decoder` has it)."""

    def option_logprobs(self, prefix_ids: Sequence[int], options: Sequence[Sequence[int]]) -> list[float]: ...


def option_logprobs(
    scorer: OptionScorer, tokenizer: ChatTokenizer, prefix: str, options: Sequence[str]
) -> list[float]:
    """Summed log-probability of each option's tokens after `prefix`.

    Options are scored capitalized as a sentence start would be ("Yes"), since that is how
    a chat model opens its reply; all options get the same treatment, so none is favoured.
    """
    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False)
    encoded = [tokenizer.encode(option.capitalize(), add_special_tokens=False) for option in options]
    return scorer.option_logprobs(prefix_ids, encoded)


def choose_label(
    scorer: OptionScorer,
    tokenizer: ChatTokenizer,
    system: str,
    passages: Sequence[Any],
    question: str,
    answer: str,
    options: Sequence[str],
    bias: Sequence[tuple[str, float]] = (),
) -> tuple[str, list[float]]:
    """The option with the highest log-likelihood plus its bias, and all raw scores."""
    prefix = label_prompt(tokenizer, system, user_message(passages, question), answer, options)
    scores = option_logprobs(scorer, tokenizer, prefix, options)
    return pick(options, scores, bias), scores


def pick(options: Sequence[str], scores: Sequence[float], bias: Sequence[tuple[str, float]] = ()) -> str:
    """The option whose score plus its bias (0 for options without one) is highest; ties: the earlier.

    >>> pick(["yes", "no"], [-1.0, -0.5], bias=[("yes", 0.75)])
    'yes'
    """
    offset = dict(bias)
    adjusted = [s + offset.get(o, 0.0) for o, s in zip(options, scores, strict=True)]
    return options[max(range(len(options)), key=lambda i: (adjusted[i], -i))]
