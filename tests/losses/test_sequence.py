"""Completion log-probs and the SFT loss: by hand, masking, and against `transformers`' own loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ragsys.losses import completion_logps, sft_loss
from tests.fixtures.tiny_models import tiny_llama_config


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
    from transformers import LlamaForCausalLM

    config = tiny_llama_config(
        64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
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
