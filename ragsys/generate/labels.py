"""A constrained final step: after the free-text answer, the model picks one of a few
labels (PubMedQA's yes / no / maybe) by log-likelihood, instead of a rule reading the
label off the answer text. The model sees the same passages and question, its own
answer, and a one-line follow-up asking for exactly one of the options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def option_logprobs(model: Any, tokenizer: ChatTokenizer, prefix: str, options: Sequence[str]) -> list[float]:
    """Summed log-probability of each option's tokens after `prefix` (one forward pass each).

    Options are scored capitalized as a sentence start would be ("Yes"), since that is how
    a chat model opens its reply; all options get the same treatment, so none is favoured.
    """
    import torch

    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False)
    encoded = [tokenizer.encode(option.capitalize(), add_special_tokens=False) for option in options]
    scores: list[float] = []
    with torch.inference_mode():
        if all(len(e) == 1 for e in encoded):  # one forward pass scores every one-token option
            ids = torch.tensor([prefix_ids], dtype=torch.long, device=model.device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
            return [float(logp[e[0]]) for e in encoded]
        for opt_ids in encoded:
            ids = torch.tensor([prefix_ids + opt_ids], dtype=torch.long, device=model.device)
            logits = model(input_ids=ids).logits[0, len(prefix_ids) - 1 : -1].float()
            logp = torch.log_softmax(logits, dim=-1)
            scores.append(float(logp[torch.arange(len(opt_ids)), torch.tensor(opt_ids)].sum()))
    return scores


def choose_label(
    model: Any,
    tokenizer: ChatTokenizer,
    system: str,
    passages: Sequence[Any],
    question: str,
    answer: str,
    options: Sequence[str],
) -> tuple[str, list[float]]:
    """The option with the highest log-likelihood (ties: the earlier option) and all scores."""
    prefix = label_prompt(tokenizer, system, user_message(passages, question), answer, options)
    scores = option_logprobs(model, tokenizer, prefix, options)
    best = max(range(len(options)), key=lambda i: (scores[i], -i))
    return options[best], scores
