"""Training examples for the generator: token sequences exactly as the model sees them.

A `Seq` is the inference prompt's token ids (`Prompt.ids`, from `build_prompt` with the
generator's own system prompt and context budget) followed by a completion's ids: the
answer text plus the chat template's end-of-turn marker. That marker is what stops
`generate`, so a model trained without it would learn to never stop. The loss sees only
the completion tokens.

An `Example` is one, two or (for KTO) a completion plus a mismatched one; `ref` holds the
reference log-probs of its sequences, computed once before training with the adapter off.

Example:
    >>> t = Templater(generator.prompt, tokenizer, end_of_turn(tokenizer))  # doctest: +SKIP
    >>> examples, stats = sft_examples(t, items, hits, abstain_text="...")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragsys.eval.evalset import EvalItem
from ragsys.feedback.records import FeedbackRecord
from ragsys.generate.prompt import ChatTokenizer, Prompt
from ragsys.train.generator.cache import WorkCache
from ragsys.train.generator.evidence import evidence_contexts
from ragsys.train.generator.targets import Targets, fit_target, sft_target
from ragsys.train.lora import reference
from ragsys.types import Answer, Hit

if TYPE_CHECKING:
    from ragsys.generate.hf import HFGenerator
    from ragsys.index.reader import Index

PromptFn = Callable[[str, Sequence[Hit]], Prompt]
_SENTINEL = "RAGSYSCOMPLETIONSENTINEL"


class NoTrainingExamples(ValueError):
    """The data phase built no example to train on (e.g. no SFT target its passages support);
    `ragsys tune` skips the stage and says why."""


@dataclass(frozen=True)
class Seq:
    """`ids[:n_prompt]` is the prompt, `ids[n_prompt:]` the completion (never empty).

    `skip` lists [start, end) token spans inside the completion that carry no loss: a
    conversation that goes on after the answer (the constrained label step's follow-up
    question) is written by the user, not the model.
    """

    ids: tuple[int, ...]
    n_prompt: int
    skip: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Example:
    """sft: (target,); paired methods: (chosen, rejected); kto: (completion, mismatched completion)."""

    seqs: tuple[Seq, ...]
    ref: tuple[float, ...] = ()  # reference log-prob of each seq, filled once before training
    desirable: bool = True  # kto only: thumb up
    weight: float = 1.0  # kto only: this judgement's share of its question (feedback.select)

    @property
    def length(self) -> int:
        return max(len(s) for s in self.seqs)


def end_of_turn(tokenizer: Any) -> str:
    """The text the chat template writes after an assistant message (`<|im_end|>` for ChatML).

    Read off the template itself by rendering a sentinel answer; trailing whitespace is
    dropped (generation stops at the marker, so the newline after it is never produced).
    Falls back to the EOS token for templates that close a turn with nothing.
    """
    text = render_chat_with_answer(tokenizer, _SENTINEL)
    suffix = text[text.rindex(_SENTINEL) + len(_SENTINEL) :].rstrip()
    if suffix:
        return suffix
    eos = getattr(tokenizer, "eos_token", None)
    if not isinstance(eos, str) or not eos:
        raise ValueError("the chat template ends an answer with nothing and the tokenizer has no EOS token")
    return eos


def render_chat_with_answer(tokenizer: Any, answer: str) -> str:
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    if not isinstance(text, str) or answer not in text:
        raise ValueError("the chat template does not write the assistant's message verbatim")
    return text


@dataclass(frozen=True)
class Templater:
    """Prompt building and completion tokenization, as at inference."""

    prompt: PromptFn  # HFGenerator.prompt: the generator's system prompt and context budget
    tokenizer: ChatTokenizer
    eot: str
    system: str | None = None  # the generator's system text; needed for the label turn only
    max_new_tokens: int | None = None  # what the generator may write: targets are cut to fit it

    def fit(self, completion: str) -> str | None:
        """`completion` cut to whole sentences the generator can write before `max_new_tokens`
        (its end-of-turn token counted), citation kept (`targets.fit_target`); None if none fits."""
        if self.max_new_tokens is None:
            return completion
        count = lambda text: len(self.tokenizer.encode(text.strip() + self.eot, add_special_tokens=False))  # noqa: E731
        return fit_target(completion, self.max_new_tokens, count)

    def seq(self, prompt: Prompt, completion: str) -> Seq:
        ids = self.tokenizer.encode(completion.strip() + self.eot, add_special_tokens=False)
        return Seq(ids=tuple(prompt.ids) + tuple(ids), n_prompt=len(prompt.ids))

    def label_seq(
        self, prompt: Prompt, question: str, completion: str, label: str, options: Sequence[str]
    ) -> Seq | None:
        """The answer, then the constrained label step's turn exactly as `ragsys.generate.labels` builds
        it at inference (its follow-up question carries no loss), then the label's tokens as
        that step scores them; None when the chat template cannot be split that way.

        Without this turn in training, a fine-tuned model answers the one-word follow-up
        with whatever it drifted to (measured on PubMedQA: "No" to all 500 test questions).
        """
        from ragsys.generate.labels import label_prompt
        from ragsys.generate.prompt import user_message

        if self.system is None:
            return None
        answer = self.seq(prompt, completion)
        head = prompt.text + completion.strip() + self.eot
        user = user_message(prompt.passages, question)
        text = label_prompt(self.tokenizer, self.system, user, completion.strip(), options)
        if not text.startswith(head):
            return None
        follow = self.tokenizer.encode(text[len(head) :], add_special_tokens=False)
        chosen = self.tokenizer.encode(label.strip().capitalize(), add_special_tokens=False)
        start = len(answer.ids)
        return Seq(
            ids=answer.ids + tuple(follow) + tuple(chosen),
            n_prompt=answer.n_prompt,
            skip=((start, start + len(follow)),),
        )


def sft_examples(
    templater: Templater,
    items: Sequence[EvalItem],
    hits: Sequence[Sequence[Hit]],
    abstain_text: str,
    label_options: Sequence[str] = (),
    targets: Targets = "supported",
) -> tuple[list[Example], Counter[str]]:
    """One example per item with a reference (answer or label) and retrieved context.

    Items without retrieved context are skipped: at inference the generator abstains
    without calling the model, so there is nothing to learn there. An item whose label is
    one of `label_options` also trains the constrained label step after its answer
    (`Templater.label_seq`), in the same sequence. Items whose reference states figures none of
    the passages state are skipped (`targets.sft_target`); targets longer than the generator
    may write are cut to whole sentences that fit (`Templater.fit`).
    """
    options = [o.lower() for o in label_options]
    examples: list[Example] = []
    stats: Counter[str] = Counter()
    for item, item_hits in zip(items, hits, strict=True):
        if not (item.answer and item.answer.strip()) and not (item.label and item.label.strip()):
            stats["skipped_no_reference"] += 1
            continue
        if not item_hits:
            stats["skipped_no_context"] += 1
            continue
        prompt = templater.prompt(item.question, item_hits)
        target = sft_target(item, prompt, abstain_text, targets)
        if target is None:
            stats["skipped_unsupported"] += 1
            continue
        fitted = templater.fit(target)
        if fitted is None:
            stats["skipped_too_long_target"] += 1
            continue
        stats["target_cut_to_fit"] += fitted != target
        target = fitted
        stats["target_abstain" if target == abstain_text else "target_answer"] += 1
        seq = None
        if item.label and item.label.strip().lower() in options:
            seq = templater.label_seq(prompt, item.question, target, item.label, label_options)
            stats["label_turn" if seq is not None else "label_turn_unsupported"] += 1
        examples.append(Example(seqs=(seq or templater.seq(prompt, target),)))
    return examples, stats


def drop_too_long(examples: Sequence[Example], max_length: int) -> tuple[list[Example], int]:
    """Examples whose every sequence fits `max_length` tokens, and how many did not.

    Dropped rather than cut: cutting passages would train on prompts the model never sees,
    and cutting the answer would teach it to stop mid-sentence.
    """
    kept = [e for e in examples if e.length <= max_length]
    return kept, len(examples) - len(kept)


def save_examples(path: Path, examples: Sequence[Example], meta: dict[str, Any]) -> None:
    rows = [
        {
            "seqs": [[list(s.ids), s.n_prompt, [list(span) for span in s.skip]] for s in e.seqs],
            "ref": list(e.ref),
            "desirable": e.desirable,
            "weight": e.weight,
        }
        for e in examples
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"meta": meta, "examples": rows}), encoding="utf-8")
    tmp.replace(path)


def load_examples(path: Path) -> tuple[list[Example], dict[str, Any]]:
    """Examples as saved (floats round-trip exactly through JSON, so resumed runs match)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    examples = [
        Example(
            seqs=tuple(_seq_from_row(r) for r in row["seqs"]),
            ref=tuple(float(r) for r in row["ref"]),
            desirable=bool(row["desirable"]),
            weight=float(row.get("weight", 1.0)),  # files written before weights: all 1
        )
        for row in data["examples"]
    ]
    return examples, dict(data["meta"])


def _seq_from_row(row: list[Any]) -> Seq:
    """[ids, n_prompt, skip spans]; files written before spans existed have no third field."""
    spans = row[2] if len(row) > 2 else []
    return Seq(ids=tuple(row[0]), n_prompt=int(row[1]), skip=tuple((int(a), int(b)) for a, b in spans))


Built = tuple[list[Example], Counter[str]]
SearchFn = Callable[[Sequence[str]], list[list[Hit]]]


@dataclass
class DataContext:
    """What a method's data builder may use; `search` builds the retrievers on first call."""

    templater: Templater
    model: Any  # the peft-wrapped model being trained; its adapter is still fresh (= base)
    generator: HFGenerator  # that model as the pipeline's generator: own answers, constrained labels
    search: SearchFn  # the pipeline's retrieval at the generator's k
    index: Index
    items: Sequence[EvalItem]
    feedback: Sequence[FeedbackRecord]
    max_length: int
    seed: int
    label_options: tuple[str, ...] = ("yes", "no", "maybe")
    reviser: str | None = None
    on_progress: Callable[[str, int, int], None] | None = None
    cache: WorkCache = field(default_factory=WorkCache)  # generations survive a stopped run
    # sft: "gold" trains on the gold documents' chunks instead (isolated control); "evidence" on the
    # retrieved passages with the gold chunks stating the reference's figures put in (evidence.py)
    contexts: str = "retrieved"
    k: int = 3
    balance_labels: bool = False  # sft: draw each closed-set label equally often (`balanced_items`)
    targets: Targets = "supported"  # sft and own-mistake revisions: the reference cut to the passages
    # own answers (KTO/CLAIR data from own mistakes) stop once this says so; the answered ones are used
    stop_answering: Callable[[], bool] = lambda: False

    @property
    def abstain_text(self) -> str:
        return self.generator.config.abstain_text

    def report(self, phase: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done, total)


def sft_data(ctx: DataContext) -> Built:
    """SFT on the pipeline's own retrieved passages, so training sees what inference sees."""
    if not ctx.items:
        raise ValueError("sft trains on questions with reference answers: pass the eval set's train items")
    items = balanced_items(ctx.items, ctx.label_options, ctx.seed) if ctx.balance_labels else list(ctx.items)
    given = None
    if ctx.contexts == "gold":
        hits = gold_hits(items, ctx.index, ctx.k)
    else:
        unique = list(dict.fromkeys(item.question for item in items))
        found = dict(zip(unique, ctx.search(unique), strict=True))
        hits = [found[item.question] for item in items]
        if ctx.contexts == "evidence":  # the gold chunks stating the reference's figures put in
            hits, given = evidence_contexts(items, hits, ctx.index, ctx.k, ctx.seed)
    examples, stats = sft_examples(
        ctx.templater, items, hits, ctx.abstain_text, ctx.label_options, ctx.targets
    )
    if given is not None:
        stats["evidence_put_in"] = given
    return examples, stats


def balanced_items(items: Sequence[EvalItem], label_options: Sequence[str], seed: int) -> list[EvalItem]:
    """The same number of labelled items, each label present drawn equally often.

    Why: on a skewed closed set (PubMedQA's train split is 55% yes, 11% maybe) plain SFT taught
    SmolLM2 to answer "yes" to every question, which raises accuracy to the majority share and
    lowers macro-F1 (measured in a `ragsys tune` run: 100 of 100 test answers "yes"). Minority
    items are repeated and majority items subsampled, so an epoch keeps its length (and its
    time on the CPU). Each label's items are shuffled (seeded) and cycled; items without a
    label in `label_options` are kept once each. The result is shuffled."""
    options = {o.lower() for o in label_options}
    rng = random.Random(seed)
    groups: dict[str, list[EvalItem]] = {}
    rest: list[EvalItem] = []
    for item in items:
        label = (item.label or "").strip().lower()
        if label in options:
            groups.setdefault(label, []).append(item)
        else:
            rest.append(item)
    if len(groups) < 2:
        return list(items)
    labelled = sum(len(g) for g in groups.values())
    out = list(rest)
    for i, label in enumerate(sorted(groups)):
        group = groups[label][:]
        rng.shuffle(group)
        share = labelled // len(groups) + (1 if i < labelled % len(groups) else 0)
        out.extend(group[j % len(group)] for j in range(share))
    rng.shuffle(out)
    return out


def gold_hits(items: Sequence[EvalItem], index: Index, k: int) -> list[list[Hit]]:
    """The first `k` chunks of each item's gold documents, as if retrieval were perfect: the
    "tuned in isolation" control, which never sees what the real retriever returns."""
    from ragsys.eval.evalset import gold_doc_ids

    doc_ids = index.store.doc_ids()
    known = set(doc_ids)
    out: list[list[Hit]] = []
    for item in items:
        chunks = [c for d in gold_doc_ids(item, doc_ids, known) for c in index.store.chunks_of(d)]
        out.append([Hit(chunk=c, score=1.0, source="gold") for c in chunks[:k]])
    return out


def own_answer(ctx: DataContext, question: str, hits: Sequence[Hit]) -> Answer:
    """The model's own answer (greedy, as the pipeline would give it) before any training."""
    with reference(ctx.model):  # the adapter is still zero: skipping it is the same model, faster
        return ctx.generator.generate(question, list(hits))
