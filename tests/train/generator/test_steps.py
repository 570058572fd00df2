"""Padded batches and one optimizer step per method on the tiny Llama with a LoRA adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ragsys.models import load_causal_lm
from ragsys.train.generator.data import Example, Templater
from ragsys.train.generator.steps import StepContext, pad, with_reference
from ragsys.train.generator.trainer import METHODS
from ragsys.train.lora import LoraSettings, adapter_parameters, attach_lora
from tests.fixtures.train_generator import make_hits, make_prompt


def test_completion_mask_covers_exactly_the_completion_tokens(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    t = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>")
    long_seq = t.seq(make_prompt(tokenizer, make_hits()), "Yes. A much longer answer than the other one.")
    short_seq = t.seq(make_prompt(tokenizer, make_hits()[:1]), "No.")
    batch = pad([long_seq, short_seq], pad_id=0, device=torch.device("cpu"))
    start = min(long_seq.n_prompt, short_seq.n_prompt) - 1
    for b, s in enumerate([long_seq, short_seq]):
        mask = batch.completion[b].tolist()
        expected = [int(s.n_prompt <= start + t < len(s)) for t in range(batch.ids.shape[1])]
        assert mask == expected
        assert sum(mask) == len(s) - s.n_prompt
        assert batch.full_ids[b, : len(s)].tolist() == list(s.ids)
        assert batch.attention[b].sum().item() == len(s)


def _examples(method: str, tokenizer: Any) -> list[Example]:
    t = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>")
    p1, p2 = make_prompt(tokenizer, make_hits()), make_prompt(tokenizer, make_hits()[1:])
    good, bad = "Yes. Floods ruined it [2].", "No. Robots [1]."
    if method == "sft":
        return [Example(seqs=(t.seq(p1, good),)), Example(seqs=(t.seq(p2, "Yes [1]."),))]
    if method == "kto":
        return [
            Example(seqs=(t.seq(p1, good), t.seq(p1, bad)), desirable=True),
            Example(seqs=(t.seq(p2, bad), t.seq(p2, good)), desirable=False),
        ]
    return [Example(seqs=(t.seq(p1, good), t.seq(p1, bad))), Example(seqs=(t.seq(p2, good), t.seq(p2, bad)))]


@pytest.mark.parametrize("method", list(METHODS))
def test_one_step_moves_the_adapter_and_lowers_the_loss(method: str, tiny_lm_path: Path) -> None:
    base, tokenizer = load_causal_lm(str(tiny_lm_path))
    torch.manual_seed(0)
    model = attach_lora(base, LoraSettings(r=4, alpha=8, dropout=0.0))
    spec = METHODS[method]
    examples = _examples(method, tokenizer)
    if spec.reference:
        examples = with_reference(model, examples, pad_id=0, batch_size=4)
    ctx = StepContext(pad_id=0, beta=0.5)
    before = {n: p.detach().clone() for n, p in adapter_parameters(model).items()}
    optimizer = torch.optim.AdamW(adapter_parameters(model).values(), lr=1e-2)
    model.train(True)
    loss0 = spec.step(model, examples, ctx)
    if method in ("dpo", "kto"):  # policy == reference: DPO is log 2, KTO is w * (1 - sigmoid(0))
        assert loss0.item() == pytest.approx(0.6931 if method == "dpo" else 0.5, abs=1e-3)
    loss0.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    with torch.no_grad():
        loss1 = spec.step(model, examples, ctx)
    moved = [n for n, p in adapter_parameters(model).items() if not torch.equal(p, before[n])]
    assert moved
    assert loss1.item() < loss0.item()


def test_a_stopped_reference_pass_keeps_the_first_whole_examples(tiny_lm_path: Path) -> None:
    base, tokenizer = load_causal_lm(str(tiny_lm_path))
    model = attach_lora(base, LoraSettings(r=4, alpha=8, dropout=0.0))
    examples = _examples("kto", tokenizer) * 3  # six examples of two sequences each
    asked: list[int] = []

    def stop() -> bool:  # first asked once example 0 is whole; says stop at the second check, mid example 1
        asked.append(1)
        return len(asked) >= 2

    kept = with_reference(model, examples, pad_id=0, batch_size=1, stop=stop)
    assert len(kept) == 1 and kept[0].seqs == examples[0].seqs and len(kept[0].ref) == 2  # never half of one
    full = with_reference(model, examples, pad_id=0, batch_size=1)
    assert kept[0].ref == full[0].ref  # the same values as an unstopped pass
    assert len(with_reference(model, examples, pad_id=0, batch_size=1, stop=lambda: False)) == 6


def test_the_budget_reports_the_share_spent() -> None:
    from ragsys.train.budget import TimeBudget

    now = [100.0]
    budget = TimeBudget(10.0, clock=lambda: now[0])
    now[0] += 150.0
    assert budget.spent_share() == pytest.approx(0.25)
    assert TimeBudget(None).spent_share() == 0.0
