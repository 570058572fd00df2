"""The LM-supervised retrieval loss: a KL from the LM's passage preferences to the retriever's."""

from __future__ import annotations

import math

import pytest
import torch

from ragsys.losses import lm_supervised_retrieval_loss
from tests.fixtures.losses import random_logps


@pytest.mark.parametrize(("t_ret", "t_lm"), [(0.1, 1.0), (1.0, 1.0), (0.05, 2.0)])
def test_lsr_is_zero_when_retriever_matches_lm(t_ret: float, t_lm: float) -> None:
    lm_logps = random_logps(3, 5, seed=90).float()
    # scores / t_ret = lm_logps / t_lm + c (a per-query shift does not change a softmax)
    scores = lm_logps * (t_ret / t_lm) + torch.tensor([[1.0], [-2.0], [0.0]]) * t_ret
    loss = lm_supervised_retrieval_loss(scores, lm_logps, t_ret, t_lm)
    assert abs(loss.item()) < 1e-6


def test_lsr_matches_kl_by_hand() -> None:
    scores = torch.tensor([[0.3, 0.1, -0.2]])
    lm = torch.tensor([[-4.0, -2.0, -3.0]])
    p = torch.softmax(scores / 0.1, -1)[0].tolist()
    q = torch.softmax(lm, -1)[0].tolist()
    expected = sum(qi * math.log(qi / pi) for qi, pi in zip(q, p, strict=True))
    loss = lm_supervised_retrieval_loss(scores, lm, 0.1, 1.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # batchmean: two copies of the query give the same value
    assert lm_supervised_retrieval_loss(scores.repeat(2, 1), lm.repeat(2, 1)).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_lsr_is_positive_when_distributions_differ() -> None:
    scores = torch.tensor([[1.0, 0.0, 0.0]])
    lm = torch.tensor([[-9.0, -1.0, -1.0]])
    assert lm_supervised_retrieval_loss(scores, lm, 1.0, 1.0).item() > 0.1


def test_lsr_gradient_moves_retriever_toward_lm_preference() -> None:
    torch.manual_seed(5)
    scores = torch.zeros(4, 6, requires_grad=True)  # retriever indifferent at the start
    lm_logps = torch.randn(4, 6) * 3
    lm_logps.requires_grad_(True)  # must stay untouched: the LM is the target here
    loss = lm_supervised_retrieval_loss(scores, lm_logps, 1.0, 1.0)
    loss.backward()
    assert scores.grad is not None
    assert lm_logps.grad is None or torch.count_nonzero(lm_logps.grad) == 0
    # dL/ds = (p - q) / (T * B): descent raises the passages the LM likes more than the retriever does
    p = torch.full((4, 6), 1 / 6)
    q = torch.softmax(lm_logps.detach(), -1)
    torch.testing.assert_close(scores.grad, (p - q) / 4)
    best = lm_logps.detach().argmax(-1)
    assert (scores.grad.gather(1, best[:, None]) < 0).all()

    # a few steps of descent make the retriever rank the LM's favourite first
    s = torch.zeros(4, 6, requires_grad=True)
    opt = torch.optim.SGD([s], lr=0.02)
    start = lm_supervised_retrieval_loss(s, lm_logps, 0.1, 1.0).item()
    for _ in range(50):
        opt.zero_grad()
        lm_supervised_retrieval_loss(s, lm_logps, 0.1, 1.0).backward()
        opt.step()
    assert lm_supervised_retrieval_loss(s, lm_logps, 0.1, 1.0).item() < 0.1 * start
    assert torch.equal(s.detach().argmax(-1), best)
