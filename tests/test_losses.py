"""Loss functions in ragsys.losses: values at known points, gradient directions, masking.

Parity with TRL's own implementations is in test_losses_trl.py; these tests pin the maths
from the papers directly, so they hold even where TRL is not installed.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ragsys.losses import (
    PAIRED_LOSSES,
    PairedLoss,
    apo_down_loss,
    apo_zero_loss,
    completion_logps,
    dpo_loss,
    kto_loss,
    lm_supervised_retrieval_loss,
    sft_loss,
)
from ragsys.losses.kto import kto_reference_point

BETAS = (0.1, 0.5, 2.0)


def _logps(*shape: int, seed: int = 0) -> torch.Tensor:
    """Plausible summed completion log-probs: negative, tens of nats."""
    g = torch.Generator().manual_seed(seed)
    return -torch.rand(*shape, generator=g, dtype=torch.float64) * 40


def _paired_grads(
    loss_fn: PairedLoss, r_chosen: torch.Tensor, r_rejected: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """d(sum loss)/d(policy_chosen), d(sum loss)/d(policy_rejected) at the given log-ratios."""
    ref_c, ref_r = _logps(len(r_chosen), seed=1), _logps(len(r_chosen), seed=2)
    pc = (ref_c + r_chosen).requires_grad_(True)
    pr = (ref_r + r_rejected).requires_grad_(True)
    loss_fn(pc, pr, ref_c, ref_r, beta).sum().backward()
    assert pc.grad is not None and pr.grad is not None
    return pc.grad, pr.grad


# ---------------------------------------------------------------- paired: values


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_is_log2_when_policy_is_reference(beta: float) -> None:
    chosen, rejected = _logps(6, seed=3), _logps(6, seed=4)
    loss = dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta)
    torch.testing.assert_close(loss, torch.full((6,), math.log(2), dtype=torch.float64))


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_matches_formula_at_random_points(beta: float) -> None:
    pc, pr, rc, rr = (_logps(8, seed=s) for s in range(4))
    margin = (pc - rc) - (pr - rr)
    expected = torch.tensor([math.log1p(math.exp(-beta * m)) for m in margin.tolist()], dtype=torch.float64)
    torch.testing.assert_close(dpo_loss(pc, pr, rc, rr, beta), expected)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("loss_fn", [apo_zero_loss, apo_down_loss])
def test_apo_is_one_at_zero_ratios(loss_fn: PairedLoss, beta: float) -> None:
    # apo-zero: (1 - s(0)) + s(0) = 1; apo-down: s(0) + (1 - s(0 - 0)) = 1
    chosen, rejected = _logps(5, seed=5), _logps(5, seed=6)
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
    pc, pr, rc, rr = (_logps(7, seed=s) for s in range(10, 14))
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


@pytest.mark.parametrize("beta", (0.5, 1.0))
def test_apo_down_descent_lowers_both_rejected_more(beta: float) -> None:
    """Plain gradient descent from the reference: both log-ratios fall, the rejected one further."""
    r_c = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    r_r = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.SGD([r_c, r_r], lr=1.0)
    for _ in range(60):
        opt.zero_grad()
        apo_down_loss(r_c, r_r, zero, zero, beta).sum().backward()
        opt.step()
    assert r_c.item() < -0.1
    assert r_r.item() < r_c.item()


@pytest.mark.parametrize("beta", (0.5, 1.0))
def test_apo_zero_descent_raises_chosen_and_lowers_rejected(beta: float) -> None:
    r_c = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    r_r = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.SGD([r_c, r_r], lr=1.0)
    for _ in range(20):
        opt.zero_grad()
        apo_zero_loss(r_c, r_r, zero, zero, beta).sum().backward()
        opt.step()
    assert r_c.item() > 0.1 and r_r.item() < -0.1


# ---------------------------------------------------------------- KTO


def _kto_inputs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    desirable = torch.rand(n, generator=g) < 0.5
    desirable[0], desirable[1] = True, False  # both kinds present
    ref = _logps(n, seed=seed + 1)
    # log-ratios of a few nats: far larger ones saturate the sigmoid and zero the gradient
    policy = ref + 3 * torch.randn(n, generator=g, dtype=torch.float64)
    return policy, ref, desirable


@pytest.mark.parametrize("beta", BETAS)
def test_kto_is_half_per_item_at_zero_ratios_and_zero_kl(beta: float) -> None:
    _, ref, desirable = _kto_inputs(6, seed=0)
    kl = _logps(6, seed=9)
    loss = kto_loss(ref.clone(), ref, desirable, kl.clone(), kl, beta)
    torch.testing.assert_close(loss, torch.full((6,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("beta", BETAS)
def test_kto_matches_formula_with_positive_kl(beta: float) -> None:
    policy, ref, desirable = _kto_inputs(8, seed=20)
    kl_ref = _logps(8, seed=30)
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
    kl_ref = _logps(5, seed=40)
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
    kl_ref = _logps(6, seed=51)
    kl_policy = (kl_ref + 1.0).requires_grad_(True)  # positive KL, so the clamp is not what blocks it
    policy.requires_grad_(True)
    kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5).sum().backward()
    assert kl_policy.grad is None or torch.count_nonzero(kl_policy.grad) == 0
    assert policy.grad is not None and torch.count_nonzero(policy.grad) == 6


@pytest.mark.parametrize("beta", BETAS)
def test_kto_gradient_raises_desirable_and_lowers_undesirable(beta: float) -> None:
    policy, ref, desirable = _kto_inputs(10, seed=60)
    kl_ref = _logps(10, seed=61)
    for kl_shift in (0.0, 1.5):
        p = policy.clone().requires_grad_(True)
        kto_loss(p, ref, desirable, kl_ref + kl_shift, kl_ref, beta).sum().backward()
        assert p.grad is not None
        assert (p.grad[desirable] < 0).all()
        assert (p.grad[~desirable] > 0).all()


def test_kto_weights_scale_the_right_items() -> None:
    policy, ref, desirable = _kto_inputs(9, seed=70)
    kl_policy, kl_ref = _logps(9, seed=71) + 0.3, _logps(9, seed=71)
    base = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5)
    up = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5, desirable_weight=2.0)
    down = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.5, undesirable_weight=3.0)
    torch.testing.assert_close(up[desirable], 2.0 * base[desirable])
    torch.testing.assert_close(up[~desirable], base[~desirable])
    torch.testing.assert_close(down[~desirable], 3.0 * base[~desirable])
    torch.testing.assert_close(down[desirable], base[desirable])


def test_kto_keeps_input_order_and_accepts_int_labels() -> None:
    policy, ref, desirable = _kto_inputs(6, seed=80)
    kl = _logps(6, seed=81)
    loss = kto_loss(policy, ref, desirable, kl + 0.2, kl, 0.5)
    for i in range(6):
        one = kto_loss(policy[i : i + 1], ref[i : i + 1], desirable[i : i + 1], kl + 0.2, kl, 0.5)
        torch.testing.assert_close(loss[i : i + 1], one)
    torch.testing.assert_close(kto_loss(policy, ref, desirable.long(), kl + 0.2, kl, 0.5), loss)


# ---------------------------------------------------------------- sequence log-probs and SFT


def test_completion_logps_by_hand() -> None:
    # one sequence of 4 tokens over a vocabulary of 3; tokens 0-1 prompt, 2-3 completion
    logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [9.0, 9.0, 9.0]]])
    input_ids = torch.tensor([[2, 1, 2, 0]])
    mask = torch.tensor([[0, 0, 1, 1]])

    def log_softmax_at(row: list[float], k: int) -> float:
        return row[k] - math.log(sum(math.exp(x) for x in row))

    rows = logits[0].tolist()
    # token 2 (=2) is predicted by position 1, token 3 (=0) by position 2; position 3 predicts nothing
    expected = log_softmax_at(rows[1], 2) + log_softmax_at(rows[2], 0)
    out = completion_logps(logits, input_ids, mask)
    assert out.shape == (1,)
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_completion_logps_ignores_prompt_and_padding_per_row() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    input_ids = torch.randint(0, 11, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]])  # row 0 right-padded, row 1 too
    token_logps = F.log_softmax(logits, -1)
    expected = torch.stack(
        [
            sum(token_logps[b, t - 1, input_ids[b, t]] for t in range(1, 6) if mask[b, t])  # type: ignore[misc]
            for b in range(2)
        ]
    )
    torch.testing.assert_close(completion_logps(logits, input_ids, mask), expected)


def test_completion_logps_accepts_bool_mask_and_half_logits() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 5, 7)
    input_ids = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])
    ref = completion_logps(logits, input_ids, mask)
    torch.testing.assert_close(completion_logps(logits, input_ids, mask.bool()), ref)
    half = completion_logps(logits.bfloat16(), input_ids, mask)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, rtol=0.05, atol=0.05)


def test_sft_loss_ignores_logits_that_predict_prompt_tokens() -> None:
    torch.manual_seed(2)
    logits = torch.randn(2, 7, 13)
    input_ids = torch.randint(0, 13, (2, 7))
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0, 0]])
    base = sft_loss(logits, input_ids, mask)
    # logits at t predict token t+1: positions whose next token is not completion, and the last one
    unused = torch.zeros(2, 7, dtype=torch.bool)
    unused[:, :-1] = mask[:, 1:] == 0
    unused[:, -1] = True
    noisy = logits + 50 * torch.randn_like(logits) * unused.unsqueeze(-1)
    torch.testing.assert_close(sft_loss(noisy, input_ids, mask), base)
    # while the logits that predict the first completion token do matter
    used = logits.clone()
    used[0, 2] += 50 * torch.randn(13)
    assert not torch.allclose(sft_loss(used, input_ids, mask), base)


def test_sft_loss_is_per_token_mean_not_per_sequence() -> None:
    torch.manual_seed(3)
    logits = torch.randn(2, 6, 5)
    input_ids = torch.randint(0, 5, (2, 6))
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]])  # 5 and 2 completion tokens
    per_seq = completion_logps(logits, input_ids, mask)
    torch.testing.assert_close(sft_loss(logits, input_ids, mask), -per_seq.sum() / 7)


def test_sft_loss_equals_transformers_labels_loss_on_a_tiny_llama() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    torch.manual_seed(4)
    model = LlamaForCausalLM(config).eval()
    # 3 sequences, right-padded with 0; prompts of different lengths
    input_ids = torch.tensor(
        [
            [5, 6, 7, 8, 9, 10, 11, 12],
            [13, 14, 15, 16, 17, 0, 0, 0],
            [18, 19, 20, 21, 22, 23, 0, 0],
        ]
    )
    attention_mask = (input_ids != 0).long()
    completion_mask = torch.tensor(
        [
            [0, 0, 0, 1, 1, 1, 1, 1],
            [0, 0, 1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0],
        ]
    )
    labels = input_ids.masked_fill(completion_mask == 0, -100)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    ours = sft_loss(out.logits, input_ids, completion_mask)
    torch.testing.assert_close(ours, out.loss, rtol=1e-5, atol=1e-6)


def test_sft_loss_is_zero_without_completion_tokens() -> None:
    logits = torch.randn(1, 4, 5)
    loss = sft_loss(logits, torch.tensor([[1, 2, 3, 4]]), torch.zeros(1, 4))
    assert loss.item() == 0.0


# ---------------------------------------------------------------- LM-supervised retrieval


@pytest.mark.parametrize(("t_ret", "t_lm"), [(0.1, 1.0), (1.0, 1.0), (0.05, 2.0)])
def test_lsr_is_zero_when_retriever_matches_lm(t_ret: float, t_lm: float) -> None:
    lm_logps = _logps(3, 5, seed=90).float()
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


def test_kto_without_mismatched_pairs_uses_zero_reference_point() -> None:
    from ragsys.losses.kto import kto_loss

    policy, ref = torch.tensor([0.3]), torch.tensor([0.1])
    empty = torch.zeros(0)
    got = kto_loss(policy, ref, torch.tensor([True]), empty, empty, beta=0.5)
    torch.testing.assert_close(got, 1 - torch.sigmoid(torch.tensor([0.5 * 0.2])))
