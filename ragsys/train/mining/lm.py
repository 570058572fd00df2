"""Language-model supervision for the rankers (REPLUG's LSR, RA-DIT's retriever step).

For a training question with a reference answer, each of its top-K retrieved passages is
scored by how likely the generator makes the reference answer when given that passage
alone: log p_LM(answer | question, passage). Those K numbers are a target distribution
over passages -- what the *generator* finds useful, not what a label file says -- and the
retriever is trained to match it (`ragsys.losses.lm_supervised_retrieval_loss`, a KL).
The answer is scored exactly as the generator would be asked (same system prompt, chat
template and end-of-turn), with the label first when the item has one.

Scoring costs K forward passes over prompt and reference per question: ~8 s a question on the
10-Q filings' multi-paragraph references (2-core CPU), so a deadline can stop it early with the
questions scored so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from ragsys.eval.evalset import EvalItem
from ragsys.train.examples import LMScored, TrainExample
from ragsys.train.generator.data import Templater, end_of_turn
from ragsys.train.generator.steps import sequence_logps
from ragsys.types import Hit

if TYPE_CHECKING:
    from ragsys.generate.hf import HFGenerator


def reference_text(item: EvalItem) -> str | None:
    parts = [f"{item.label.strip().capitalize()}."] if item.label and item.label.strip() else []
    if item.answer and item.answer.strip():
        parts.append(item.answer.strip())
    return " ".join(parts) or None


def lm_score_passages(
    generator: HFGenerator,
    items: Sequence[EvalItem],
    hits: Sequence[Sequence[Hit]],
    k: int,
    on_progress: Callable[[int], None] | None = None,
    deadline: float | None = None,
) -> list[LMScored]:
    """Scores the top-`k` passages of every item that has a reference answer (others are skipped),
    stopping before the next item once `time.monotonic()` passes `deadline`."""
    import torch

    model, tokenizer = generator.model, cast(Any, generator.tokenizer)
    templater = Templater(generator.prompt, tokenizer, end_of_turn(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[LMScored] = []
    with torch.inference_mode():
        for item, item_hits in zip(items, hits, strict=True):
            if deadline is not None and time.monotonic() > deadline:
                break
            ref = reference_text(item)
            top = list(item_hits[:k])
            if ref is not None and len(top) >= 2:
                seqs = [templater.seq(generator.prompt(item.question, [h]), ref) for h in top]
                logps = sequence_logps(model, seqs, int(pad_id))
                out.append(LMScored(query=item.question, passages=tuple(h.chunk for h in top),
                                    lm_logps=tuple(float(x) for x in logps)))  # fmt: skip
            if on_progress is not None:
                on_progress(1)
    return out


def lm_ranked_examples(scored: Sequence[LMScored], n_negatives: int) -> list[TrainExample]:
    """The LM's judgement as ranking examples: the passage that makes the reference answer most
    likely is the positive, the least helpful ones are the negatives (for rankers trained on
    positives and negatives, such as the cross-encoder)."""
    out: list[TrainExample] = []
    for s in scored:
        order = sorted(range(len(s.passages)), key=lambda j: -s.lm_logps[j])
        best = s.passages[order[0]]
        worst = [s.passages[j] for j in reversed(order[1:]) if s.passages[j].doc_id != best.doc_id]
        if worst:
            out.append(TrainExample(query=s.query, positive=best, negatives=tuple(worst[:n_negatives])))
    return out
