"""The KTO loss: values, the clamped KL reference point, gradients and weights. Parity with TRL is
in tests/comparison/test_losses_trl.py."""

from __future__ import annotations

import math

import pytest
import torch

from ragsys.losses import kto_loss
from ragsys.losses.kto import kto_reference_point
from tests.fixtures.losses import BETAS, random_logps


def _kto_inputs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    desirable = torch.rand(n, generator=g) < 0.5
    desirable[0], desirable[1] = True, False  # both kinds present
    ref = random_logps(n, seed=seed + 1)
    # log-ratios of a few nats: far larger ones saturate the sigmoid and zero the gradient
    policy = ref + 3 * torch.randn(n, generator=g, dtype=torch.float64)
    return policy, ref, desirable


@pytest.mark.parametrize("beta", BETAS)
def test_kto_is_half_per_item_at_zero_ratios_and_zero_kl(beta: float) -> None:
    _, ref, desirable = _kto_inputs(6, seed=0)
    kl = random_logps(6, seed=9)
    loss = kto_loss(ref.clone(), ref, desirable, kl.clone(), kl, beta)
    torch.testing.assert_close(loss, torch.full((6,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("beta", BETAS)
def test_kto_matches_formula_with_positive_kl(beta: float) -> None:
    policy, ref, desirable = _kto_inputs(8, seed=20)
    kl_ref = random_logps(8, seed=30)
    kl_policy = kl_ref + torch.linspace(0.0, 2.0, 8, dtype=torch.float64)  # mean KL = 1.0
    z0 = 1.0
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = [
        1 - s(beta * (r - z0)) if d else 1 - s(beta * (z0 - r))
        for r, d in zip((policy - ref).tolist(), desirable.tolist(), strict=True)
    ]
    loss = kto_loss(policy, ref, desirable, kl_policy, kl_ref, beta)
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64))


def test_kto_reference_point_is_clamped_at_zero() -> None:
    kl_ref = random_logps(5, seed=40)
    kl_policy = kl_ref - 3.0  # policy below reference on average: mean KL estimate -3
    assert kto_reference_point(kl_policy, kl_ref).item() == 0.0
    policy, ref, desirable = _kto_inputs(5, seed=41)
    clamped = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5)
    at_zero = kto_loss(policy, ref, desirable, kl_ref.clone(), kl_ref, 0.5)
    torch.testing.assert_close(clamped, at_zero)
    # and a positive estimate is used as is
    assert kto_reference_point(kl_ref + 0.75, kl_ref).item() == pytest.approx(0.75)


def test_kto_reference_point_carries_no_gradient() -> None:
    policy, ref, desirable = _kto_inputs(6, seed=50)
    kl_ref = random_logps(6, seed=51)
    kl_policy = (kl_ref + 1.0).requires_grad_(True)  # positive KL, so the clamp is not what blocks it
    policy.requires_grad_(True)
    kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5).sum().backward()
    assert kl_policy.grad is None or torch.count_nonzero(kl_policy.grad) == 0
    assert policy.grad is not None and torch.count_nonzero(policy.grad) == 6


@pytest.mark.parametrize("beta", BETAS)
def test_kto_gradient_raises_desirable_and_lowers_undesirable(beta: float) -> None:
    policy, ref, desirable = _kto_inputs(10, seed=60)
    kl_ref = random_logps(10, seed=61)
    for kl_shift in (0.0, 1.5):
        p = policy.clone().requires_grad_(True)
        kto_loss(p, ref, desirable, kl_ref + kl_shift, kl_ref, beta).sum().backward()
        assert p.grad is not None
        assert (p.grad[desirable] < 0).all()
        assert (p.grad[~desirable] > 0).all()


def test_kto_weights_scale_the_right_items() -> None:
    policy, ref, desirable = _kto_inputs(9, seed=70)
    kl_policy, kl_ref = random_logps(9, seed=71) + 0.3, random_logps(9, seed=71)
    base = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5)
    up = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5, desirable_weight=2.0)
    down = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5, undesirable_weight=3.0)
    torch.testing.assert_close(up[desirable], 2.0 * base[desirable])
    torch.testing.assert_close(up[~desirable], base[~desirable])
    torch.testing.assert_close(down[~desirable], 3.0 * base[~desirable])
    torch.testing.assert_close(down[desirable], base[desirable])


def test_kto_keeps_input_order_and_accepts_int_labels() -> None:
    policy, ref, desirable = _kto_inputs(6, seed=80)
    kl = random_logps(6, seed=81)
    loss = kto_loss(policy, ref, desirable, kl + 0.2, kl, 0.5)
    for i in range(6):
        one = kto_loss(policy[i : i + 1], ref[i : i + 1], desirable[i : i + 1], kl + 0.2, kl, 0.5)
        torch.testing.assert_close(loss[i : i + 1], one)
    torch.testing.assert_close(kto_loss(policy, ref, desirable.long(), kl + 0.2, kl, 0.5), loss)


def test_kto_without_mismatched_pairs_uses_zero_reference_point() -> None:
    from ragsys.losses.kto import kto_loss

    policy, ref = torch.tensor([0.3]), torch.tensor([0.1])
    empty = torch.zeros(0)
    got = kto_loss(policy, ref, torch.tensor([True]), empty, empty, beta=0.5)
    torch.testing.assert_close(got, 1 - torch.sigmoid(torch.tensor([0.5 * 0.2])))
