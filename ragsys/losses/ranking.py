"""Ranking losses that sentence-transformers does not ship.

LM-supervised retrieval (REPLUG LSR, Shi et al. 2023; also RA-DIT's retriever step): the
retriever's distribution over its top-k passages is pulled towards the distribution that
says how much each passage raises the generator's likelihood of the reference answer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lm_supervised_retrieval_loss(
    retriever_scores: torch.Tensor,
    lm_logps: torch.Tensor,
    retriever_temperature: float = 0.1,
    lm_temperature: float = 1.0,
) -> torch.Tensor:
    """KL(Q_lm || P_retriever), averaged over queries -> scalar.

    retriever_scores: (B, K) similarity of each query to its K retrieved passages (with grad);
    lm_logps: (B, K) log p_LM(reference answer | passage k, query), a fixed target (no grad).
    """
    log_p = F.log_softmax(retriever_scores / retriever_temperature, dim=-1)  # (B, K)
    q = F.softmax(lm_logps.detach() / lm_temperature, dim=-1)  # (B, K)
    return F.kl_div(log_p, q, reduction="batchmean")
