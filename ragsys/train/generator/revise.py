"""CLAIR revisions by a stronger model (D'Oosterlinck et al. 2024, "Anchored Preferences").

The model answers each train question itself; a reviser LM then edits that answer as
little as possible so it agrees with the reference answer and cites its passages. The
pair (revision > own answer) differs only where the answer was wrong, so the preference
signal is about the error, not about style -- the contrast CLAIR is built on. Trained
with APO-zero, since the revisions are better than what the model writes now.

Example:
    >>> examples, stats = reviser_pairs(ctx)  # ctx.reviser = "path/to/stronger-lm"  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.generate.prompt import Passage, decode, render_chat, user_message
from ragsys.generate.watch import visible_text
from ragsys.train.generator.data import DataContext, Example, own_answer
from ragsys.train.generator.targets import sft_target
from ragsys.types import Hit

REVISER_SYSTEM = (
    "You correct a draft answer with minimal edits. Keep the draft's wording wherever it is right; "
    "change only what the reference answer contradicts or the draft leaves out. After each sentence, "
    "cite the passages that support it by number in square brackets, like [1]. "
    "Reply with the revised answer only."
)


def revision_request(passages: Sequence[Passage], question: str, reference: str, draft: str) -> str:
    return (
        f"{user_message(passages, question)}\n\nReference answer: {reference.strip()}\n\n"
        f"Draft answer: {draft.strip()}\n\nRevise the draft answer."
    )


def revise(model: Any, tokenizer: Any, request: str, max_new_tokens: int, stops: Sequence[str]) -> str | None:
    """The reviser's greedy reply to `request`, or None when the prompt exceeds its window."""
    import torch

    ids = tokenizer.encode(render_chat(tokenizer, REVISER_SYSTEM, request), add_special_tokens=False)
    window = getattr(tokenizer, "model_max_length", None)
    if isinstance(window, int) and len(ids) + max_new_tokens > window:
        return None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    inputs = torch.tensor([ids], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=pad,
        )  # fmt: skip
    text = decode(tokenizer, out[0, len(ids) :].tolist(), skip_special_tokens=True)
    return visible_text(text, stops, final=True)[0]


def reviser_pairs(ctx: DataContext) -> tuple[list[Example], Counter[str]]:
    """(revision, own answer) pairs for the train items that have a reference answer or label.

    The reviser loads on the first item not already revised (a resumed run may need none)
    and is freed before training, so it never shares memory with the training step.
    """
    items = [i for i in ctx.items if (i.answer and i.answer.strip()) or (i.label and i.label.strip())]
    hits = ctx.search([i.question for i in items])
    kept = [(item, h) for item, h in zip(items, hits, strict=True) if h]
    reviser: list[tuple[Any, Any]] = []
    config = ctx.generator.config

    def unit(item: EvalItem, item_hits: Sequence[Hit]) -> dict[str, str | None]:
        draft = own_answer(ctx, item.question, item_hits).text
        if not reviser:
            reviser.append(_load_reviser(ctx))
        prompt = ctx.templater.prompt(item.question, item_hits)
        # the reference cut to what the passages support; the whole one where none of it is
        target = sft_target(item, prompt, config.abstain_text, ctx.targets) or (item.answer or "").strip()
        request = revision_request(prompt.passages, item.question, target, draft)
        return {"answer": draft, "revision": revise(*reviser[0], request, config.max_new_tokens, config.stop)}

    stats: Counter[str] = Counter(revise_skipped_no_context=len(items) - len(kept))
    examples: list[Example] = []
    for n, (item, item_hits) in enumerate(kept, start=1):
        entry = ctx.cache.get("revise", item.id, lambda: unit(item, item_hits))  # noqa: B023 (called at once)
        ctx.report("generate", n, len(kept))
        answer, revision = entry["answer"] or "", entry["revision"]
        if revision is None:
            stats["revise_skipped_too_long"] += 1
        elif not revision.strip() or revision.strip() == answer.strip():
            stats["revise_unchanged"] += 1
        else:
            prompt = ctx.templater.prompt(item.question, item_hits)
            examples.append(
                Example(seqs=(ctx.templater.seq(prompt, revision), ctx.templater.seq(prompt, answer)))
            )
            stats["pairs_reviser"] += 1
    reviser.clear()
    return examples, stats


def _load_reviser(ctx: DataContext) -> tuple[Any, Any]:
    from ragsys.models import load_causal_lm

    assert ctx.reviser is not None
    model, tokenizer = load_causal_lm(ctx.reviser)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"reviser {ctx.reviser!r} has no chat template; use an instruction-tuned model")
    moved: Any = model.to(ctx.model.device)
    return moved, tokenizer
