"""Examples from judged answers: KTO thumbs, preference pairs, CLAIR revisions.

A feedback record names the chunk ids the generator saw, so its prompt is rebuilt from
the index exactly as it was; when a chunk is gone (re-indexed since), the question is
retrieved again and the stats say how often. Thumbs can also come from an eval set's
labels (`thumbs_from_labels`): the model answers the train questions and a thumb is up
when its label (the constrained choice of `ragsys.generate.labels`) matches the gold one.

Or from an eval set's reference answers (`reference_feedback`), so the generator learns from
its own mistakes on the pipeline's own passages: the model answers each train question with a
free-text reference; `answer_is_right` judges it (every figure stated, `numeric_match`, where
the reference has figures; token F1 >= `RIGHT_F1` otherwise; abstaining is right exactly when
the question is unanswerable) into an up or down thumb (KTO), and each wrong answer gets the
answer SFT would have taught as its revision (`sft_target`: the reference with `[n]` for the
gold passages, or the abstention sentence), which CLAIR and APO-zero learn from as pairs.

Example:
    >>> records = FeedbackStore.open(Path("fb.sqlite"), readonly=True).records()  # doctest: +SKIP
    >>> examples, stats = kto_data(ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragsys.eval.answers import map_yes_no_maybe, stated_decision, token_f1
from ragsys.eval.evalset import EvalItem
from ragsys.eval.numbers import numeric_match
from ragsys.feedback.records import FeedbackRecord
from ragsys.feedback.select import question_key, question_weights
from ragsys.generate.citations import is_abstention
from ragsys.generate.prompt import Prompt
from ragsys.index.reader import Index
from ragsys.train.generator.data import Built, DataContext, Example, Seq, Templater, own_answer
from ragsys.train.generator.data import NoTrainingExamples as NoExamples
from ragsys.train.generator.grounding import ground_revisions
from ragsys.train.generator.revise import reviser_pairs
from ragsys.train.generator.targets import sft_target
from ragsys.train.lora import reference
from ragsys.types import Answer, Hit


class NoPreferenceSignal(NoExamples):
    """The judged answers give a preference method no example to learn from; `ragsys tune`'s
    preference stage skips that method and says why."""


LABEL_VERSION = "eval-labels"  # pipeline_version of thumbs made from eval labels
REFERENCE_VERSION = "eval-references"  # ... and of judgements made against reference answers
RIGHT_F1 = 0.5  # token F1 against a reference without figures at which an answer counts as right


def context_hits(index: Index, chunk_ids: Sequence[str]) -> list[Hit] | None:
    """The stored chunks in the order the generator saw them, or None if any is gone."""
    if not chunk_ids:
        return None
    rows = index.store.rows_of_chunk_ids(chunk_ids)
    if any(c not in rows for c in chunk_ids):
        return None
    return [Hit(chunk=c, score=0.0, source="feedback") for c in index.chunks([rows[c] for c in chunk_ids])]


def record_prompts(
    ctx: DataContext, records: Sequence[FeedbackRecord]
) -> tuple[list[Prompt | None], Counter[str]]:
    """Each record's prompt, rebuilt from its stored contexts or, failing that, retrieved again."""
    hits = [context_hits(ctx.index, r.contexts) for r in records]
    missing = [i for i, h in enumerate(hits) if h is None]
    if missing:
        for i, found in zip(missing, ctx.search([records[i].question for i in missing]), strict=True):
            hits[i] = found
    prompts = [ctx.templater.prompt(r.question, h) if h else None for r, h in zip(records, hits, strict=True)]
    stats = Counter(
        contexts_stored=len(records) - len(missing),
        contexts_re_retrieved=len(missing),
        skipped_no_context=sum(p is None for p in prompts),
    )
    return prompts, stats


def answer_entry(answer: Answer) -> dict[str, Any]:
    return {"text": answer.text, "contexts": [h.chunk.id for h in answer.contexts]}


def answer_from_entry(ctx: DataContext, question: str, hits: Sequence[Hit], entry: dict[str, Any]) -> Answer:
    """An answer rebuilt from its cached text and context ids (the hits it was generated from)."""
    by_id = {h.chunk.id: h for h in hits}
    text, contexts = str(entry["text"]), tuple(by_id[c] for c in entry["contexts"])
    abstained = is_abstention(text, ctx.abstain_text) or not contexts
    return Answer(question=question, text=text, abstained=abstained, contexts=contexts)


def thumbs_from_labels(
    items: Sequence[EvalItem], answers: Sequence[Answer], labels: Sequence[str] | None = None,
    pipeline_version: str = LABEL_VERSION,
) -> list[FeedbackRecord]:  # fmt: skip
    """Up when the answer's label matches the item's gold label, else down; unlabelled items skipped.

    `labels` are the labels to judge (`answer_label`); without them the label is read off
    the answer's first sentence (`map_yes_no_maybe`).
    """
    records: list[FeedbackRecord] = []
    for i, (item, answer) in enumerate(zip(items, answers, strict=True)):
        if not item.label:
            continue
        chosen = labels[i] if labels is not None else map_yes_no_maybe(answer.text)
        records.append(
            FeedbackRecord(
                question=item.question, answer=answer.text,
                contexts=tuple(h.chunk.id for h in answer.contexts), pipeline_version=pipeline_version,
                rating="up" if chosen.strip().lower() == item.label.strip().lower() else "down",
            )
        )  # fmt: skip
    return records


def answer_label(ctx: DataContext, answer: Answer) -> str:
    """The verdict the thumb judges: the one the answer states in its first sentence, since
    KTO moves the likelihood of that text; the constrained label step only for an answer
    that states none (the model is not trained on it, so it must not decide the thumb of a
    text that says otherwise: measured, an SFT model whose answers said "Yes." was "No" there).
    """
    stated = stated_decision(answer.text)
    if stated is not None and stated in ctx.label_options:
        return stated
    if not answer.contexts:
        return map_yes_no_maybe(answer.text)
    with reference(ctx.model):
        return ctx.generator.choose(answer, ctx.label_options)[0]


def labelled_thumbs(ctx: DataContext) -> list[FeedbackRecord]:
    """Thumbs for the labelled train items: the PubMedQA experiment's feedback source."""
    items = [i for i in ctx.items if i.label]
    if not items:
        return []
    hits = ctx.search([i.question for i in items])

    def unit(item: EvalItem, item_hits: Sequence[Hit]) -> dict[str, Any]:
        answer = own_answer(ctx, item.question, item_hits)
        return answer_entry(answer) | {"label": answer_label(ctx, answer)}

    answers, labels = [], []
    for n, (item, item_hits) in enumerate(zip(items, hits, strict=True), start=1):
        entry = ctx.cache.get("thumb", item.id, lambda: unit(item, item_hits))  # noqa: B023 (called at once)
        answers.append(answer_from_entry(ctx, item.question, item_hits, entry))
        labels.append(str(entry["label"]))
        ctx.report("generate", n, len(items))
    return thumbs_from_labels(items, answers, labels)


def answer_is_right(item: EvalItem, answer: Answer) -> bool:
    """Whether an own answer is right against its item (module docstring)."""
    if not item.answerable:
        return answer.abstained
    if answer.abstained or not item.answer:
        return False
    numeric = numeric_match(answer.text, item.answer)
    if numeric is not None:
        return numeric == 1.0
    return token_f1(answer.text, item.answer) >= RIGHT_F1


def reference_feedback(ctx: DataContext) -> list[FeedbackRecord]:
    """Judged own answers to the train items with free-text references (closed-set items are
    `labelled_thumbs`'s): up if right, else down with the SFT target as its revision (the whole
    reference where the passages state none of it: `grounding` searches for it). Answering
    stops early when `ctx.stop_answering()` says so (the items answered by then are used)."""
    items = [i for i in ctx.items if (i.answer or not i.answerable) and not i.label]
    if not items:
        return []
    hits = ctx.search([i.question for i in items])
    records: list[FeedbackRecord] = []
    for n, (item, item_hits) in enumerate(zip(items, hits, strict=True), start=1):
        if records and not ctx.cache.has("mistake", item.id) and ctx.stop_answering():
            break  # out of time for answering: learn from the answers so far
        fresh = lambda q=item.question, h=item_hits: answer_entry(own_answer(ctx, q, h))  # noqa: E731
        entry = ctx.cache.get("mistake", item.id, fresh)
        answer = answer_from_entry(ctx, item.question, item_hits, entry)
        right = answer_is_right(item, answer)
        revision = None
        if not right and answer.contexts:
            prompt = ctx.generator.prompt(item.question, answer.contexts)
            target = sft_target(item, prompt, ctx.abstain_text, ctx.targets)
            target = ctx.templater.fit(target) if target is not None else (item.answer or "").strip() or None
            revision = target if target is not None and target.strip() != answer.text.strip() else None
        records.append(
            FeedbackRecord(
                question=item.question, answer=answer.text,
                contexts=tuple(h.chunk.id for h in answer.contexts), pipeline_version=REFERENCE_VERSION,
                rating="up" if right else "down", revision=revision,
            )
        )  # fmt: skip
        ctx.report("generate", n, len(items))
    return records


def kto_weights(
    examples: Sequence[Example], desirable: float | None, undesirable: float | None
) -> tuple[float, float]:
    """(w_desirable, w_undesirable); unset ones rebalance so w_d n_d / (w_u n_u) lies in [1, 4/3].

    That range is the KTO paper's recommendation (Ethayarajh et al. 2024): the
    loss is tuned for slightly more desirable than undesirable weight in total. n_d and n_u
    count each example by its per-question weight, as the loss does.
    """
    n_d = sum(e.weight for e in examples if e.desirable)
    n_u = sum(e.weight for e in examples if not e.desirable)
    if desirable is not None and undesirable is not None:
        return desirable, undesirable
    if not n_d or not n_u:
        return desirable or 1.0, undesirable or 1.0
    if desirable is not None:
        return desirable, desirable * n_d / n_u
    if undesirable is not None:
        return undesirable * n_u / n_d, undesirable
    ratio = n_d / n_u
    if ratio < 1.0:
        return n_u / n_d, 1.0
    if ratio > 4.0 / 3.0:
        return 1.0, ratio * 3.0 / 4.0
    return 1.0, 1.0


def _truncate(seq: Seq, max_length: int) -> Seq:
    if len(seq) <= max_length:
        return seq
    skip = tuple((lo, min(hi, max_length)) for lo, hi in seq.skip if lo < max_length)
    return Seq(ids=seq.ids[:max_length], n_prompt=seq.n_prompt, skip=skip)


def kto_examples(
    templater: Templater, records: Sequence[FeedbackRecord], prompts: Sequence[Prompt | None],
    max_length: int, seed: int, weights: Sequence[float] | None = None,
) -> tuple[list[Example], int]:  # fmt: skip
    """KTO examples and how many were too long. Each carries a mismatched sequence for z0:
    its prompt with the next example's answer in a seeded shuffle (TRL pairs them the same
    way, at data preparation, so the reference log-probs can be computed once). `weights`:
    each record's loss weight (default 1)."""
    # an empty answer stays: its completion is the end-of-turn token, a real (stop-at-once) output
    ws = weights if weights is not None else [1.0] * len(records)
    base = [(p, r.answer, r.rating == "up", w)
            for r, p, w in zip(records, prompts, ws, strict=True) if p is not None]  # fmt: skip
    seqs = [templater.seq(b[0], b[1]) for b in base]
    order = [i for i, s in enumerate(seqs) if len(s) <= max_length]
    random.Random(seed).shuffle(order)
    examples = []
    for j, i in enumerate(order):
        partner = base[order[(j + 1) % len(order)]][1]
        mismatched = _truncate(templater.seq(base[i][0], partner), max_length)  # it only estimates z0
        examples.append(Example(seqs=(seqs[i], mismatched), desirable=base[i][2], weight=base[i][3]))
    return examples, len(seqs) - len(order)


def revised_thumbs(records: Sequence[FeedbackRecord]) -> list[FeedbackRecord]:
    """Each revised answer's revision as an up thumb on the same prompt: the corrected answer is
    a desirable completion (KTO's unpaired reading of a preference pair). Without these, a
    model whose own answers are all wrong gives KTO only down thumbs, nothing to move toward."""
    return [
        p.source.model_copy(update={"answer": p.chosen, "rating": "up", "revision": None})
        for p in preference_pairs(records, thumbs=False)
        if p.source.rating == "down"
    ]


def kto_data(ctx: DataContext) -> Built:
    """KTO from the feedback store's thumbs, plus thumbs on own answers to train items (by label
    for labelled ones, against the reference answer for the others), plus every revision as an
    up thumb on its prompt (`revised_thumbs`)."""
    by_label, by_reference = labelled_thumbs(ctx), reference_feedback(ctx)
    users, own = revised_thumbs(ctx.feedback), revised_thumbs(by_reference)
    records: list[FeedbackRecord] = [*ctx.feedback, *users, *by_label, *by_reference, *own]
    if not records:
        raise ValueError(
            "kto needs thumbs: pass a feedback store, or train items with labels or reference answers"
        )
    prompts, stats = record_prompts(ctx, records)
    n, m = len(ctx.feedback), len(records)
    revised = [*range(n, n + len(users)), *range(m - len(own), m)]  # the users' revisions, then own
    todo = [(i, prompt) for i in revised if (prompt := prompts[i])]
    wanted = [(records[i].question, records[i].answer, prompt) for i, prompt in todo]
    for (i, _), grounded in zip(todo, ground_revisions(ctx, wanted, stats), strict=True):
        stats["revisions_unsupported"] += grounded is None
        if grounded is not None:
            records[i] = records[i].model_copy(update={"answer": grounded[0]})
        prompts[i] = grounded[1] if grounded is not None else None
    # each user question weighs once however often it was judged (a revision is a second judgement
    # of its question); own-answer thumbs keep weight 1 before the weights are scaled to average 1
    weights = question_weights(
        [r.question for r in (*ctx.feedback, *users)], others=len(by_label) + len(by_reference) + len(own)
    )
    examples, too_long = kto_examples(ctx.templater, records, prompts, ctx.max_length, ctx.seed, weights)
    stats.update(
        feedback_records=len(ctx.feedback), label_thumbs=len(by_label), reference_thumbs=len(by_reference),
        revision_thumbs=len(users) + len(own), dropped_too_long_kto=too_long,
        feedback_questions=len({question_key(r.question) for r in ctx.feedback}),
        desirable=sum(e.desirable for e in examples), undesirable=sum(not e.desirable for e in examples),
    )  # fmt: skip
    return examples, stats


@dataclass(frozen=True)
class Pair:
    """A preference: `chosen` over `rejected`, both answers to `source`'s question and contexts."""

    source: FeedbackRecord
    chosen: str
    rejected: str
    kind: str  # "revision" or "thumbs"


def preference_pairs(records: Sequence[FeedbackRecord], thumbs: bool = True) -> list[Pair]:
    """Revisions (chosen = revision, rejected = the answer), then, per question, each thumb-up
    answer against each thumb-down one, cycling the shorter list so every record is used.

    Thumb pairs take the up record's contexts as the prompt: its answer was written (and
    its citations numbered) for them.
    """
    pairs = [
        Pair(r, r.revision, r.answer, "revision")
        for r in records
        if r.revision and r.revision.strip() != r.answer.strip()
    ]
    if not thumbs:
        return pairs
    groups: dict[str, tuple[list[FeedbackRecord], list[FeedbackRecord]]] = {}
    for r in records:
        ups, downs = groups.setdefault(r.question.strip(), ([], []))
        (ups if r.rating == "up" else downs).append(r)
    for ups, downs in groups.values():
        if not ups or not downs:
            continue
        for j in range(max(len(ups), len(downs))):
            up, down = ups[j % len(ups)], downs[j % len(downs)]
            if up.answer.strip() != down.answer.strip():
                pairs.append(Pair(up, up.answer, down.answer, "thumbs"))
    return pairs


def pair_examples(ctx: DataContext, pairs: Sequence[Pair]) -> tuple[list[Example], Counter[str]]:
    """Chosen over rejected on each pair's rebuilt prompt; a revision is grounded first, searched
    for when its passages do not support it (`grounding`), and its pair dropped when still not."""
    prompts, stats = record_prompts(ctx, [p.source for p in pairs])
    todo = [(i, prompt) for i, p in enumerate(pairs) if p.kind == "revision" and (prompt := prompts[i])]
    wanted = [(pairs[i].source.question, pairs[i].chosen, prompt) for i, prompt in todo]
    grounded = {i: g for (i, _), g in zip(todo, ground_revisions(ctx, wanted, stats), strict=True)}
    examples = []
    for i, (p, prompt) in enumerate(zip(pairs, prompts, strict=True)):
        if prompt is None:
            continue
        chosen: str | None = p.chosen
        if i in grounded:
            chosen, prompt = grounded[i] or (None, prompt)
        if chosen is None:
            stats["revisions_unsupported"] += 1
            continue
        seqs = (ctx.templater.seq(prompt, chosen), ctx.templater.seq(prompt, p.rejected))
        examples.append(Example(seqs=seqs))
    stats.update(Counter(f"pairs_{p.kind}" for p in pairs))
    return examples, stats


def pair_data(ctx: DataContext) -> Built:
    """DPO / APO pairs from the feedback store (revisions and up/down answers to one question)
    and from own wrong answers to train items with references, revised to their SFT target."""
    records = [*ctx.feedback, *reference_feedback(ctx)]
    if not records:
        raise ValueError(
            "preference training needs a feedback store with revisions or up/down thumbs, "
            "or train items with reference answers"
        )
    return pair_examples(ctx, preference_pairs(records))


def clair_data(ctx: DataContext) -> Built:
    """CLAIR: minimal revisions against the answers they revise, from feedback, from own wrong
    answers to train items revised to their reference, and/or from a reviser model."""
    own = reference_feedback(ctx) if ctx.reviser is None else []
    examples, stats = pair_examples(ctx, preference_pairs([*ctx.feedback, *own], thumbs=False))
    stats.update(own_answers=len(own), own_wrong=sum(r.rating == "down" for r in own))
    if ctx.reviser is not None and ctx.items:
        revised, revise_stats = reviser_pairs(ctx)
        examples += revised
        stats.update(revise_stats)
    if not examples and not ctx.feedback and ctx.reviser is None and not own:
        raise ValueError(
            "clair needs revisions: a feedback store with revised answers, train items with "
            "reference answers, or a reviser model"
        )
    return examples, stats
