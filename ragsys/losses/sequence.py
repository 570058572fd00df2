"""Per-sequence log-probs of a completion and the SFT loss on completion tokens only.

Shapes: B batch, T tokens, V vocabulary. `completion_mask[b, t]` is 1 where token t of
sequence b belongs to the completion (the answer), 0 on the prompt and on padding. A
causal LM's logits at position t predict token t+1, so both functions shift by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    # logits (B, T, V), input_ids (B, T) -> (B, T-1): log p(token t+1 | tokens <= t)
    logps = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return torch.gather(logps, 2, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def completion_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> torch.Tensor:
    """Summed log-prob of each sequence's completion tokens: (B, T, V), (B, T), (B, T) -> (B,)."""
    mask = completion_mask[:, 1:].to(torch.float32)  # (B, T-1), aligned with the predicted tokens
    return (_token_logps(logits, input_ids) * mask).sum(-1)


def sft_loss(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over all completion tokens in the batch -> scalar.

    Prompt tokens (the passages and the question) carry no loss: the model learns to answer
    from the context, not to reproduce it. Averaged per token, as transformers' `labels=-100`
    convention does, so long answers weigh more than short ones.
    """
    mask = completion_mask[:, 1:].to(torch.float32)  # (B, T-1)
    n_tokens = mask.sum().clamp(min=1.0)
    return -(_token_logps(logits, input_ids) * mask).sum() / n_tokens
