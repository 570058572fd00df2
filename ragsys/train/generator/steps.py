"""One forward pass per method: batches of `Example`s in, a scalar loss out.

The loss math lives in `ragsys.losses`; these functions only pad, run the model and hand
the per-sequence log-probs over. Batches are right-padded with an attention mask, and the
model is asked for logits only from the first completion position on (`logits_to_keep`):
prompts are ~10x longer than answers, and the vocabulary projection plus log-softmax over
prompt positions would otherwise dominate time and memory while carrying no loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ragsys.losses.kto import kto_loss
from ragsys.losses.preference import PAIRED_LOSSES
from ragsys.losses.sequence import completion_logps, sft_loss
from ragsys.train.generator.cache import WorkCache
from ragsys.train.generator.data import Example, Seq
from ragsys.train.lora import reference

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class StepContext:
    pad_id: int
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0


StepLoss = Callable[[Any, Sequence[Example], StepContext], "torch.Tensor"]


@dataclass(frozen=True)
class Padded:
    """Right-padded batch, cut to start one token before the earliest completion."""

    ids: torch.Tensor  # (B, T') the tokens from `start` on
    completion: torch.Tensor  # (B, T') 1 on completion tokens
    full_ids: torch.Tensor  # (B, T) whole sequences, for the forward pass
    attention: torch.Tensor  # (B, T)


def pad(seqs: Sequence[Seq], pad_id: int, device: torch.device) -> Padded:
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s.ids, dtype=torch.long)
        attention[b, : len(s)] = 1
        completion[b, s.n_prompt : len(s)] = 1
        for lo, hi in s.skip:  # a user turn inside the completion: no loss there
            completion[b, lo:hi] = 0
    start = max(min(s.n_prompt for s in seqs) - 1, 0)  # logits at start predict the first completion token
    ids, attention, completion = ids.to(device), attention.to(device), completion.to(device)
    return Padded(ids[:, start:], completion[:, start:], ids, attention)


def logits(model: Any, batch: Padded) -> torch.Tensor:
    """(B, T', V) logits for the positions in `batch.ids` only."""
    keep = batch.ids.shape[1]
    out = model(
        input_ids=batch.full_ids, attention_mask=batch.attention, logits_to_keep=keep, use_cache=False
    )
    result: torch.Tensor = out.logits
    return result


def sequence_logps(model: Any, seqs: Sequence[Seq], pad_id: int) -> torch.Tensor:
    """Summed completion log-prob of each sequence -> (B,)."""
    batch = pad(seqs, pad_id, model.device)
    return completion_logps(logits(model, batch), batch.ids, batch.completion)


def with_reference(
    model: Any, examples: Sequence[Example], pad_id: int, batch_size: int,
    on_progress: Callable[[int, int], None] | None = None, cache: WorkCache | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Example]:  # fmt: skip
    """Every example with the reference log-probs of its sequences (adapter off, eval mode).

    Done once before training: the reference never changes, so recomputing it each step
    (or keeping a second model to do so) would only cost time and memory. Each batch's
    values go through `cache`, so a run stopped here keeps what it computed.

    `stop`, checked before each batch once some example is scored, ends the pass early: the
    examples scored so far are returned and the rest dropped, so a run on a budget keeps time
    to train. The examples are then scored in the order given (first ones kept), each one's
    sequences together; without it, sequences of similar length are batched together.
    """
    import torch

    flat = [(i, j, s) for i, e in enumerate(examples) for j, s in enumerate(e.seqs)]
    if stop is None:
        flat.sort(key=lambda t: (len(t[2]), t[0], t[1]))  # similar lengths together: little padding
    refs: dict[tuple[int, int], float] = {}
    complete = 0  # examples whose every sequence is scored (counted for the example-major order)
    memo = cache if cache is not None else WorkCache()
    was_training = model.training
    model.train(False)

    def score(part: list[tuple[int, int, Seq]]) -> list[float]:
        with reference(model), torch.inference_mode():
            return [float(v) for v in sequence_logps(model, [s for _, _, s in part], pad_id).tolist()]

    for start in range(0, len(flat), batch_size):
        part = flat[start : start + batch_size]
        key = ",".join(f"{i}.{j}" for i, j, _ in part)
        if stop is not None and complete and stop() and not memo.has("reference", key):
            break
        values = memo.get("reference", key, lambda: score(part))  # noqa: B023 (called at once)
        refs.update({(i, j): float(v) for (i, j, _), v in zip(part, values, strict=True)})
        complete += sum(j == len(examples[i].seqs) - 1 for i, j, _ in part)  # in example order, its last
        if on_progress is not None:
            on_progress(min(start + batch_size, len(flat)), len(flat))
    model.train(was_training)
    return [
        replace(e, ref=tuple(refs[(i, j)] for j in range(len(e.seqs))))
        for i, e in enumerate(examples)
        if all((i, j) in refs for j in range(len(e.seqs)))
    ]


def sft_step(model: Any, batch: Sequence[Example], ctx: StepContext) -> torch.Tensor:
    padded = pad([e.seqs[0] for e in batch], ctx.pad_id, model.device)
    return sft_loss(logits(model, padded), padded.ids, padded.completion)


def paired_step(name: str) -> StepLoss:
    """A step for one of `PAIRED_LOSSES`: chosen and rejected go through one forward pass."""
    loss_fn = PAIRED_LOSSES[name]

    def step(model: Any, batch: Sequence[Example], ctx: StepContext) -> torch.Tensor:
        import torch

        n = len(batch)
        logps = sequence_logps(model, [e.seqs[0] for e in batch] + [e.seqs[1] for e in batch], ctx.pad_id)
        ref = torch.tensor([[e.ref[0], e.ref[1]] for e in batch], dtype=logps.dtype, device=logps.device)
        return loss_fn(logps[:n], logps[n:], ref[:, 0], ref[:, 1], ctx.beta).mean()

    return step


def kto_step(model: Any, batch: Sequence[Example], ctx: StepContext) -> torch.Tensor:
    """KTO; z0 from each example's mismatched sequence (its prompt, another example's answer)."""
    import torch

    policy = sequence_logps(model, [e.seqs[0] for e in batch], ctx.pad_id)
    with torch.no_grad():  # z0 carries no gradient (kto_loss detaches it anyway): save the graph
        kl_policy = sequence_logps(model, [e.seqs[1] for e in batch], ctx.pad_id)
    ref = torch.tensor([[e.ref[0], e.ref[1]] for e in batch], dtype=policy.dtype, device=policy.device)
    desirable = torch.tensor([e.desirable for e in batch], device=policy.device)
    losses = kto_loss(
        policy, ref[:, 0], desirable, kl_policy, ref[:, 1], ctx.beta,
        desirable_weight=ctx.desirable_weight, undesirable_weight=ctx.undesirable_weight,
    )  # fmt: skip
    # per-question weights average 1 over the data set, so all-1 weights give the plain mean
    weight = torch.tensor([e.weight for e in batch], dtype=losses.dtype, device=losses.device)
    return (losses * weight).mean()
