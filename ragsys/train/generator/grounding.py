"""Revisions grounded in passages that state them, found by searching with the revision.

A revision (a user's correction through `ragsys serve`, or the reference answer an own wrong
answer is revised to) is taught on a prompt, cited by the passages that support it
(`targets.ground_revision`). On the passages the wrong answer was written from it is often not
supported: the answer was wrong because retrieval missed the figures. In the 10-Q feedback
loop 99 of 118 revisions were dropped for that reason, so the loop learned from 19.

Dropping them wastes the one signal a user gave. But the revision itself is a good query for
its evidence: it names the company, the line item and the figures, which BM25 matches as
tokens. So an unsupported revision that states figures is searched for with the pipeline's own
retrieval (`DataContext.search`, the generator's k); the fewest found chunks that state the
most of its figures (`evidence.evidence_chunks`, read as `numeric_match` reads figures) are put
among the original passages (`evidence.with_evidence`, seeded), and the revision is grounded
on that prompt instead. No gold document is read: only the index and the revision.

SFT does the same for a reference answer with no gold document and no label
(`sft_grounded_data`): such a reference is trusted as answerable, and before it was taught as
written, figure-free prose uncited (no gold passage to cite), so SFT on the feedback loop's
revisions would teach uncited answers. It is learned as a revision is: every sentence cited by
the passages that state it, searched for when they do not. References with gold documents or
labels are SFT targets as before (`targets.sft_target`).

Example:
    >>> grounded = ground_revisions(ctx, [(question, revision, prompt)])  # doctest: +SKIP
    >>> text, prompt = grounded[0]  # None when nothing found supports the revision
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from ragsys.eval.evalset import EvalItem
from ragsys.eval.numbers import figures
from ragsys.generate.prompt import Prompt
from ragsys.train.generator.data import Built, DataContext, Example, sft_data
from ragsys.train.generator.evidence import evidence_chunks, with_evidence
from ragsys.train.generator.targets import ground_revision

Grounded = tuple[str, Prompt] | None


def grounded_on(ctx: DataContext, revision: str, prompt: Prompt) -> str | None:
    """`targets.ground_revision` on `prompt`'s passages, cut to what the generator may write."""
    passages = [p.text for p in prompt.passages]
    return ground_revision(revision, passages, ctx.abstain_text, ctx.templater.fit)


def ground_revisions(
    ctx: DataContext, wanted: Sequence[tuple[str, str, Prompt]], stats: Counter[str] | None = None
) -> list[Grounded]:
    """Each (question, revision, prompt) as (the grounded revision, the prompt it is taught on),
    or None when neither its prompt nor the passages found by searching with it support it.
    `stats` counts `revisions_grounded_by_search`."""
    out: list[Grounded] = []
    searched: list[int] = []
    for i, (_, revision, prompt) in enumerate(wanted):
        text = grounded_on(ctx, revision, prompt)
        out.append((text, prompt) if text is not None else None)
        if text is None and figures(revision):
            searched.append(i)
    if not searched:
        return out
    found = ctx.search([wanted[i][1] for i in searched])  # the revision is the query
    for i, hits in zip(searched, found, strict=True):
        question, revision, prompt = wanted[i]
        evidence = evidence_chunks(revision, [h.chunk for h in hits])
        if not evidence:
            continue
        rng = random.Random(f"{ctx.seed}:{question}")
        k = max(ctx.k, len(prompt.passages))
        given = with_evidence([p.hit for p in prompt.passages], evidence, k, rng)
        new_prompt = ctx.templater.prompt(question, given)
        text = grounded_on(ctx, revision, new_prompt)
        if text is not None:
            out[i] = (text, new_prompt)
            if stats is not None:
                stats["revisions_grounded_by_search"] += 1
    return out


def sft_grounded_data(ctx: DataContext) -> Built:
    """`data.sft_data`, with each reference that has no gold document and no label learned as a
    revision (module docstring): grounded on its retrieved passages, or on found ones."""
    plain = ctx.contexts != "retrieved" or ctx.targets != "supported"
    trusted = [] if plain else [it for it in ctx.items if _trusted(it)]
    if not trusted:
        return sft_data(ctx)
    rest = [it for it in ctx.items if not _trusted(it)]
    examples, stats = sft_data(replace(ctx, items=rest)) if rest else ([], Counter[str]())
    found = [
        (it, hits) for it, hits in zip(trusted, ctx.search([it.question for it in trusted]), strict=True)
    ]
    wanted = [
        (it.question, (it.answer or "").strip(), ctx.templater.prompt(it.question, h)) for it, h in found if h
    ]
    stats["skipped_no_context"] += len(found) - len(wanted)
    for grounded in ground_revisions(ctx, wanted, stats):
        if grounded is None:
            stats["skipped_unsupported"] += 1
            continue
        text, prompt = grounded
        stats["target_abstain" if text == ctx.abstain_text else "target_answer"] += 1
        examples.append(Example(seqs=(ctx.templater.seq(prompt, text),)))
    return examples, stats


def _trusted(item: EvalItem) -> bool:
    """A free-text reference with nothing to say which passages back it (no gold, no label)."""
    has_answer = bool(item.answer and item.answer.strip())
    return has_answer and not (
        item.gold_doc_ids or item.gold_chunk_ids or (item.label and item.label.strip())
    )
