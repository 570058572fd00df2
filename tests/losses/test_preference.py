"""Paired preference losses (DPO, APO-zero, APO-down): values at known points and gradient
directions. Parity with TRL is in tests/comparison/test_losses_trl.py; these pin the maths from the
papers directly, so they hold even where TRL is not installed."""

from __future__ import annotations

import math

import pytest
import torch

from ragsys.losses import PAIRED_LOSSES, PairedLoss, apo_down_loss, apo_zero_loss, dpo_loss
from tests.fixtures.losses import BETAS, random_logps


def _paired_grads(
    loss_fn: PairedLoss, r_chosen: torch.Tensor, r_rejected: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """d(sum loss)/d(policy_chosen), d(sum loss)/d(policy_rejected) at the given log-ratios."""
    ref_c, ref_r = random_logps(len(r_chosen), seed=1), random_logps(len(r_chosen), seed=2)
    pc = (ref_c + r_chosen).requires_grad_(True)
    pr = (ref_r + r_rejected).requires_grad_(True)
    loss_fn(pc, pr, ref_c, ref_r, beta).sum().backward()
    assert pc.grad is not None and pr.grad is not None
    return pc.grad, pr.grad


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_is_log2_when_policy_is_reference(beta: float) -> None:
    chosen, rejected = random_logps(6, seed=3), random_logps(6, seed=4)
    loss = dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta)
    torch.testing.assert_close(loss, torch.full((6,), math.log(2), dtype=torch.float64))


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_matches_formula_at_random_points(beta: float) -> None:
    pc, pr, rc, rr = (random_logps(8, seed=s) for s in range(4))
    margin = (pc - rc) - (pr - rr)
    expected = torch.tensor([math.log1p(math.exp(-beta * m)) for m in margin.tolist()], dtype=torch.float64)
    torch.testing.assert_close(dpo_loss(pc, pr, rc, rr, beta), expected)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("loss_fn", [apo_zero_loss, apo_down_loss])
def test_apo_is_one_at_zero_ratios(loss_fn: PairedLoss, beta: float) -> None:
    # apo-zero: (1 - s(0)) + s(0) = 1; apo-down: s(0) + (1 - s(0 - 0)) = 1
    chosen, rejected = random_logps(5, seed=5), random_logps(5, seed=6)
    loss = loss_fn(chosen, rejected, chosen.clone(), rejected.clone(), beta)
    torch.testing.assert_close(loss, torch.ones(5, dtype=torch.float64))


def test_apo_formulas_at_a_hand_point() -> None:
    # r_chosen = 2, r_rejected = -1, beta = 0.5 (APO paper eqs. 7 and 8)
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    pc, pr = torch.tensor([-10.0]), torch.tensor([-21.0])
    rc, rr = torch.tensor([-12.0]), torch.tensor([-20.0])
    zero = apo_zero_loss(pc, pr, rc, rr, 0.5).item()
    down = apo_down_loss(pc, pr, rc, rr, 0.5).item()
    assert zero == pytest.approx((1 - s(1.0)) + s(-0.5), rel=1e-6)
    assert down == pytest.approx(s(1.0) + (1 - s(1.5)), rel=1e-6)


def test_paired_losses_registry_names_the_right_functions() -> None:
    assert PAIRED_LOSSES == {"dpo": dpo_loss, "apo-zero": apo_zero_loss, "apo-down": apo_down_loss}


@pytest.mark.parametrize("loss_fn", [dpo_loss, apo_zero_loss, apo_down_loss])
def test_paired_losses_are_per_pair(loss_fn: PairedLoss) -> None:
    pc, pr, rc, rr = (random_logps(7, seed=s) for s in range(10, 14))
    batch = loss_fn(pc, pr, rc, rr, 0.3)
    assert batch.shape == (7,)
    for i in range(7):
        one = loss_fn(pc[i : i + 1], pr[i : i + 1], rc[i : i + 1], rr[i : i + 1], 0.3)
        torch.testing.assert_close(batch[i : i + 1], one)


# ---------------------------------------------------------------- paired: gradient directions


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_gradient_raises_chosen_and_lowers_rejected(beta: float) -> None:
    # at the reference (ratios 0) and at random ratios: d/d(chosen) < 0, d/d(rejected) > 0,
    # with magnitude beta * sigmoid(-beta * margin)
    for r_c, r_r in [(torch.zeros(4), torch.zeros(4)), (torch.randn(4) * 3, torch.randn(4) * 3)]:
        r_c, r_r = r_c.double(), r_r.double()
        g_c, g_r = _paired_grads(dpo_loss, r_c, r_r, beta)
        assert (g_c < 0).all() and (g_r > 0).all()
        expected = beta * torch.sigmoid(-beta * (r_c - r_r))
        torch.testing.assert_close(-g_c, expected)
        torch.testing.assert_close(g_r, expected)


@pytest.mark.parametrize("beta", BETAS)
def test_apo_zero_gradient_raises_chosen_and_lowers_rejected(beta: float) -> None:
    torch.manual_seed(0)
    for r_c, r_r in [(torch.zeros(4), torch.zeros(4)), (torch.randn(4) * 3, torch.randn(4) * 3)]:
        g_c, g_r = _paired_grads(apo_zero_loss, r_c.double(), r_r.double(), beta)
        assert (g_c < 0).all() and (g_r > 0).all()


@pytest.mark.parametrize("beta", BETAS)
def test_apo_down_gradient_at_the_reference(beta: float) -> None:
    # L = s(b r_c) + 1 - s(b (r_c - r_r)); dL/dr_c = b s'(b r_c) - b s'(b (r_c - r_r)) = b/4 - b/4 = 0
    # at r = 0, so the first step only lowers the rejected answer (dL/dr_r = b/4 > 0).
    g_c, g_r = _paired_grads(
        apo_down_loss, torch.zeros(3, dtype=torch.float64), torch.zeros(3).double(), beta
    )
    torch.testing.assert_close(g_c, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(g_r, torch.full((3,), beta / 4, dtype=torch.float64))


@pytest.mark.parametrize("beta", BETAS)
def test_apo_down_gradient_lowers_chosen_once_rejected_is_below(beta: float) -> None:
    # with r_c = 0 and r_r < 0: dL/dr_c = b (s'(0) - s'(-b r_r)) > 0, so descent lowers chosen too
    r_r = -torch.tensor([0.5, 2.0, 5.0], dtype=torch.float64)
    g_c, g_r = _paired_grads(apo_down_loss, torch.zeros(3, dtype=torch.float64), r_r, beta)
    assert (g_c > 0).all() and (g_r > 0).all()


def _descend(loss_fn: PairedLoss, beta: float, steps: int) -> tuple[float, float]:
    """Plain SGD (lr 1) on the policy log-ratios, from the reference: the final (r_chosen, r_rejected)."""
    r_c = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    r_r = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.SGD([r_c, r_r], lr=1.0)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(r_c, r_r, zero, zero, beta).sum().backward()
        opt.step()
    return r_c.item(), r_r.item()


@pytest.mark.parametrize("beta", (0.5, 1.0))
def test_apo_down_descent_lowers_both_rejected_more(beta: float) -> None:
    """Plain gradient descent from the reference: both log-ratios fall, the rejected one further."""
    r_c, r_r = _descend(apo_down_loss, beta, steps=60)
    assert r_c < -0.1
    assert r_r < r_c


@pytest.mark.parametrize("beta", (0.5, 1.0))
def test_apo_zero_descent_raises_chosen_and_lowers_rejected(beta: float) -> None:
    r_c, r_r = _descend(apo_zero_loss, beta, steps=20)
    assert r_c > 0.1 and r_r < -0.1
