"""Paired preference losses over per-sequence log-probs (policy and frozen reference).

Every function takes four (B,) tensors -- summed completion log-probs of the chosen and the
rejected answer under the policy and under the reference -- and returns (B,) per-pair
losses; the trainer takes the mean. Log-ratios r = log pi(y|x) - log pi_ref(y|x).
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class PairedLoss(Protocol):
    """(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) -> per-pair losses."""

    def __call__(self, pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float, /) -> Tensor: ...


def dpo_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor, beta: float
) -> Tensor:
    """DPO, sigmoid form (Rafailov et al. 2023, eq. 7): -log sigmoid(beta * (r_chosen - r_rejected)).

    Equals log 2 when the policy is the reference (all ratios 0).
    """
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (B,)
    return -F.logsigmoid(beta * margin)


def apo_zero_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor, beta: float
) -> Tensor:
    """APO-zero (D'Oosterlinck et al. 2024, eq. 7): push chosen up and rejected down, each on its own.

    For when the chosen answers are better than what the model writes now (e.g. CLAIR
    revisions of its own answers).
    """
    r_chosen = policy_chosen - ref_chosen  # (B,)
    r_rejected = policy_rejected - ref_rejected  # (B,)
    return (1 - torch.sigmoid(beta * r_chosen)) + torch.sigmoid(beta * r_rejected)


def apo_down_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor, beta: float
) -> Tensor:
    """APO-down (eq. 8): over training, chosen goes down and rejected further down.

    For when even the chosen answers are worse than the model's own default output. At the
    reference point the gradient on chosen is exactly zero (the two terms cancel), so the
    first steps only lower rejected; chosen falls once the margin has opened.
    """
    r_chosen = policy_chosen - ref_chosen  # (B,)
    r_rejected = policy_rejected - ref_rejected  # (B,)
    return torch.sigmoid(beta * r_chosen) + (1 - torch.sigmoid(beta * (r_chosen - r_rejected)))


PairedName = Literal["dpo", "apo-zero", "apo-down"]
PAIRED_LOSSES: dict[str, PairedLoss] = {"dpo": dpo_loss, "apo-zero": apo_zero_loss, "apo-down": apo_down_loss}
