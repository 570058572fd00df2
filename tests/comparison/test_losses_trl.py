"""Numerical parity of ragsys.losses with TRL's DPOTrainer and KTOTrainer (TRL 1.16, test-only).

TRL 1.16 has no standalone loss function: the maths sits inside each trainer's
`_compute_loss(model, inputs, return_outputs)`, after the model's forward. So these tests run
that method itself, on a trainer made with `object.__new__` (skipping `__init__`, which wants
a real model, tokenizer and dataset) and given only the attributes `_compute_loss` reads.

The model is a stand-in: `input_ids` has two columns, the first an integer key into a table
of log-probs, and the forward returns `.log_probs` of shape (N, 1) -- one "completion token"
whose log-prob is the summed completion log-prob we want. TRL sums over that single
position, so the per-sequence log-probs it sees are exactly our random values. The reference
log-probs go in through TRL's own precomputed-reference path (`precompute_ref_logps=True`,
batch keys `ref_chosen_logps`/`ref_rejected_logps` for DPO, `ref_logps`/`ref_KL_logps` for
KTO), so no reference model is needed. For KTO the mismatched "KL" completions are a second
set of keys in the same table, passed as `KL_input_ids`.

`_compute_loss` returns the batch mean (DPO: mean over pairs; KTO: `nanmean` over the
desirable losses followed by the undesirable ones). Means are order-free, so we compare them
with our per-item losses' mean; per-item parity comes from batches of one item (for KTO
with the full KL batch, which TRL takes as a separate forward of any size).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
import torch

pytest.importorskip("trl")

from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402
from trl.trainer.kto_trainer import KTOTrainer  # noqa: E402

from ragsys.losses import apo_down_loss, apo_zero_loss, dpo_loss, kto_loss  # noqa: E402
from ragsys.losses.preference import PairedLoss  # noqa: E402

SEEDS = (0, 1, 2)
BETAS = (0.1, 0.5)
RTOL = 1e-5


class _TableLM:
    """Forward returns the log-prob row named by `input_ids[:, 0]`, with the outputs TRL logs."""

    training = False  # TRL's "eval" mode: no token counting from the attention mask

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def __call__(self, input_ids: torch.Tensor, **_: Any) -> SimpleNamespace:
        log_probs = self.table[input_ids[:, 0]].unsqueeze(1)  # (N, 1): one completion token each
        zeros = torch.zeros_like(log_probs)
        return SimpleNamespace(
            log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool(), aux_loss=None
        )


def _accelerator() -> SimpleNamespace:
    def same(x: torch.Tensor) -> torch.Tensor:
        return x

    return SimpleNamespace(device=torch.device("cpu"), gather=same, gather_for_metrics=same)


def _rows(keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """input_ids (N, 2) whose first column is the key; every token counted as completion."""
    input_ids = torch.stack([keys, torch.zeros_like(keys)], dim=1)
    ones = torch.ones_like(input_ids)
    return {"input_ids": input_ids, "attention_mask": ones, "completion_mask": ones}


def _trainer_state(model: _TableLM, beta: float) -> dict[str, Any]:
    return {
        "model": model,
        "accelerator": _accelerator(),
        "beta": beta,
        "precompute_ref_logps": True,
        "aux_loss_enabled": False,
        "_metrics": {"train": defaultdict(list), "eval": defaultdict(list)},
        "_total_train_tokens": 0,
        "_tp_size": 1,
    }


# ---------------------------------------------------------------- DPO / APO


def trl_paired_loss(
    loss_type: str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPOTrainer._compute_loss on these per-sequence log-probs -> its scalar (mean) loss."""
    n = len(policy_chosen)
    model = _TableLM(torch.cat([policy_chosen, policy_rejected]))
    trainer = object.__new__(DPOTrainer)
    vars(trainer).update(
        _trainer_state(model, beta),
        loss_types=[loss_type],
        loss_weights=[1.0],
        f_divergence_type="reverse_kl",
        ld_alpha=None,
        use_weighting=False,
        label_smoothing=0.0,
    )
    inputs = _rows(torch.arange(2 * n))  # batch is [chosen..., rejected...], as TRL's collator makes it
    inputs["ref_chosen_logps"], inputs["ref_rejected_logps"] = ref_chosen, ref_rejected
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    assert isinstance(loss, torch.Tensor)
    return loss


def _paired_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ref_c, ref_r = -40 * torch.rand(n, generator=g), -40 * torch.rand(n, generator=g)
    # policy within a few nats of the reference, as during training, so the sigmoids do not saturate
    pol_c, pol_r = ref_c + 4 * torch.randn(n, generator=g), ref_r + 4 * torch.randn(n, generator=g)
    return pol_c, pol_r, ref_c, ref_r


PAIRED = [("sigmoid", dpo_loss), ("apo_zero", apo_zero_loss), ("apo_down", apo_down_loss)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize(("trl_type", "ours"), PAIRED, ids=[t for t, _ in PAIRED])
def test_paired_loss_matches_trl_batch_mean(trl_type: str, ours: PairedLoss, beta: float, seed: int) -> None:
    batch = _paired_batch(8, seed)
    expected = trl_paired_loss(trl_type, *batch, beta)
    torch.testing.assert_close(ours(*batch, beta).mean(), expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize(("trl_type", "ours"), PAIRED, ids=[t for t, _ in PAIRED])
def test_paired_loss_matches_trl_per_pair(trl_type: str, ours: PairedLoss, beta: float) -> None:
    """Batches of one: each of our per-pair losses equals TRL's loss on that pair alone."""
    batch = _paired_batch(5, seed=10)
    per_pair = ours(*batch, beta)
    for i in range(5):
        pc, pr, rc, rr = (t[i : i + 1] for t in batch)
        one = (pc, pr, rc, rr)
        expected = trl_paired_loss(trl_type, *one, beta)
        torch.testing.assert_close(per_pair[i], expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize(("trl_type", "ours"), PAIRED, ids=[t for t, _ in PAIRED])
def test_paired_loss_matches_trl_at_the_reference(trl_type: str, ours: PairedLoss) -> None:
    _, _, ref_c, ref_r = _paired_batch(4, seed=20)
    expected = trl_paired_loss(trl_type, ref_c.clone(), ref_r.clone(), ref_c, ref_r, 0.1)
    torch.testing.assert_close(ours(ref_c.clone(), ref_r.clone(), ref_c, ref_r, 0.1).mean(), expected)


def test_trl_table_model_feeds_the_intended_logps() -> None:
    """Guard for the harness: a wrong chosen/rejected split in the stand-in would change DPO's sign."""
    ref = torch.zeros(1)
    up = trl_paired_loss("sigmoid", torch.tensor([5.0]), torch.tensor([-5.0]), ref, ref, 0.5)
    down = trl_paired_loss("sigmoid", torch.tensor([-5.0]), torch.tensor([5.0]), ref, ref, 0.5)
    assert up.item() < 0.01 < 4.9 < down.item()


# ---------------------------------------------------------------- KTO


def trl_kto_loss(
    policy: torch.Tensor,
    ref: torch.Tensor,
    desirable: torch.Tensor,
    kl_policy: torch.Tensor,
    kl_ref: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """KTOTrainer._compute_loss (loss_type "kto", KL estimated) -> its scalar (nanmean) loss."""
    n, m = len(policy), len(kl_policy)
    model = _TableLM(torch.cat([policy, kl_policy]))  # keys 0..n-1 main, n..n+m-1 mismatched
    trainer = object.__new__(KTOTrainer)
    vars(trainer).update(
        _trainer_state(model, beta),
        loss_type="kto",
        calculate_KL=True,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
    )
    inputs = _rows(torch.arange(n))
    kl_rows = _rows(torch.arange(n, n + m))
    inputs.update(
        KL_input_ids=kl_rows["input_ids"],
        KL_attention_mask=kl_rows["attention_mask"],
        KL_completion_mask=kl_rows["completion_mask"],
        label=desirable,
        ref_logps=ref,
        ref_KL_logps=kl_ref,
    )
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    assert isinstance(loss, torch.Tensor)
    return loss


def _kto_batch(n: int, seed: int, kl_shift: float) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    ref = -40 * torch.rand(n, generator=g)
    policy = ref + 4 * torch.randn(n, generator=g)
    kl_ref = -40 * torch.rand(n, generator=g)
    kl_policy = kl_ref + kl_shift + torch.randn(n, generator=g)
    return policy, ref, kl_policy, kl_ref


def _labels(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 100)
    labels = torch.rand(n, generator=g) < 0.5
    labels[0], labels[-1] = True, False
    return labels


LABELINGS = {
    "mixed": lambda n, seed: _labels(n, seed),
    "all_desirable": lambda n, seed: torch.ones(n, dtype=torch.bool),
    "all_undesirable": lambda n, seed: torch.zeros(n, dtype=torch.bool),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("kl_shift", [2.0, -2.0], ids=["kl_positive", "kl_negative_clamped"])
@pytest.mark.parametrize("labeling", list(LABELINGS))
def test_kto_matches_trl_batch_mean(labeling: str, kl_shift: float, beta: float, seed: int) -> None:
    policy, ref, kl_policy, kl_ref = _kto_batch(8, seed, kl_shift)
    desirable = LABELINGS[labeling](8, seed)
    expected = trl_kto_loss(policy, ref, desirable, kl_policy, kl_ref, beta)
    ours = kto_loss(policy, ref, desirable, kl_policy, kl_ref, beta)
    torch.testing.assert_close(ours.mean(), expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("kl_shift", [1.0, -1.0], ids=["kl_positive", "kl_negative_clamped"])
def test_kto_matches_trl_per_item(kl_shift: float, beta: float) -> None:
    """One labelled completion per TRL call, with the whole mismatched batch for the KL estimate."""
    policy, ref, kl_policy, kl_ref = _kto_batch(6, 30, kl_shift)
    desirable = _labels(6, 30)
    ours = kto_loss(policy, ref, desirable, kl_policy, kl_ref, beta)
    for i in range(6):
        sl = slice(i, i + 1)
        expected = trl_kto_loss(policy[sl], ref[sl], desirable[sl], kl_policy, kl_ref, beta)
        torch.testing.assert_close(ours[i], expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize(("w_d", "w_u"), [(1.0, 1.33), (2.0, 1.0), (0.5, 3.0)])
def test_kto_weights_match_trl(w_d: float, w_u: float) -> None:
    policy, ref, kl_policy, kl_ref = _kto_batch(9, 40, 0.5)
    desirable = _labels(9, 40)
    expected = trl_kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.1, w_d, w_u)
    ours = kto_loss(policy, ref, desirable, kl_policy, kl_ref, 0.1, w_d, w_u)
    torch.testing.assert_close(ours.mean(), expected, rtol=RTOL, atol=1e-7)


def test_kto_trl_harness_sees_the_kl_term() -> None:
    """Guard: with a large positive KL TRL's loss moves, so the KL path of the stand-in is live."""
    policy, ref, kl_policy, kl_ref = _kto_batch(6, 50, 0.0)
    desirable = _labels(6, 50)
    base = trl_kto_loss(policy, ref, desirable, kl_ref.clone(), kl_ref, 0.5)
    shifted = trl_kto_loss(policy, ref, desirable, kl_ref + 5.0, kl_ref, 0.5)
    assert abs(shifted.item() - base.item()) > 0.01
    torch.testing.assert_close(kto_loss(policy, ref, desirable, kl_ref + 5.0, kl_ref, 0.5).mean(), shifted)
