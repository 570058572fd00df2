"""KTO (Ethayarajh et al. 2024) over unpaired thumbs-up/down completions.

Each completion is desirable (thumb up) or undesirable (thumb down); there is no pairing.
The reference point z0 is the policy/reference KL, estimated from *mismatched* pairs in
the batch (prompt i with completion i+1), so it measures how far the policy drifted in
general rather than on the labelled answers. It is clamped at 0 and carries no gradient.
"""

from __future__ import annotations

import torch


def kto_reference_point(kl_policy: torch.Tensor, kl_ref: torch.Tensor) -> torch.Tensor:
    """z0 = max(0, mean(log pi - log pi_ref)) over mismatched pairs: (M,), (M,) -> scalar, detached.

    With no mismatched pairs (a batch of one) there is no estimate, and z0 is 0, as TRL does
    when it skips the KL term.
    """
    if kl_policy.numel() == 0:
        return torch.zeros((), dtype=kl_policy.dtype, device=kl_policy.device)
    return (kl_policy - kl_ref).mean().detach().clamp(min=0)


def kto_loss(
    policy: torch.Tensor,
    ref: torch.Tensor,
    desirable: torch.Tensor,
    kl_policy: torch.Tensor,
    kl_ref: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """Per-completion KTO losses -> (B,), ordered as the inputs.

    policy, ref: (B,) summed completion log-probs; desirable: (B,) bool;
    kl_policy, kl_ref: (M,) log-probs of the mismatched completions (for z0).
    Desirable: w_d * (1 - sigmoid(beta * (r - z0))); undesirable: w_u * (1 - sigmoid(beta * (z0 - r))).
    Weights let a lopsided feedback set (many more downs than ups) be rebalanced, as the paper
    recommends: w_d * n_desirable / (w_u * n_undesirable) in [1, 4/3].
    """
    z0 = kto_reference_point(kl_policy, kl_ref)
    ratio = policy - ref  # (B,)
    up = desirable_weight * (1 - torch.sigmoid(beta * (ratio - z0)))
    down = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - ratio)))
    return torch.where(desirable.to(torch.bool), up, down)
