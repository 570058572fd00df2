"""Training data for the generator: SFT targets, completion and label turns, balancing, storage."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsys.eval.evalset import EvalItem
from ragsys.generate.labels import label_prompt
from ragsys.generate.prompt import Prompt, build_prompt, user_message
from ragsys.pipeline import PipelineConfig
from ragsys.train.generator.data import (
    Example,
    Seq,
    Templater,
    balanced_items,
    end_of_turn,
    load_examples,
    save_examples,
    sft_examples,
)
from ragsys.train.generator.steps import pad
from ragsys.train.generator.targets import sft_target
from ragsys.types import Hit
from tests.fixtures.train_generator import ABSTAIN, ITEMS, SYSTEM, make_hits, make_prompt


def test_sft_target_puts_the_label_first_and_cites_gold_passages(lm: tuple[Any, Any]) -> None:
    prompt = make_prompt(lm[1], make_hits())
    assert sft_target(ITEMS[1], prompt, ABSTAIN) == "Yes. Spring floods. [2]"
    assert sft_target(ITEMS[0], prompt, ABSTAIN) == "Twelve kilograms. [1]"


def test_sft_target_abstains_when_no_gold_passage_was_retrieved(lm: tuple[Any, Any]) -> None:
    prompt = make_prompt(lm[1], make_hits())
    assert sft_target(ITEMS[2], prompt, ABSTAIN) == ABSTAIN
    unsupported = EvalItem(id="x", question="q", split="train", label="maybe", gold_doc_ids=("none.md",))
    assert sft_target(unsupported, prompt, ABSTAIN) == ABSTAIN


def test_sft_target_without_gold_documents_trusts_the_answer(lm: tuple[Any, Any]) -> None:
    prompt = make_prompt(lm[1], make_hits())
    assert sft_target(EvalItem(id="x", question="q", split="train", answer=" Ten. "), prompt) == "Ten."
    assert sft_target(EvalItem(id="x", question="q", split="train", label="no"), prompt) == "No."
    nothing = EvalItem(id="x", question="q", split="train", gold_doc_ids=("robots.md",))
    assert sft_target(nothing, prompt, ABSTAIN) == ABSTAIN  # gold retrieved, but nothing to say


def test_completion_is_the_answer_plus_the_templates_end_of_turn(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    assert end_of_turn(tokenizer) == "<|im_end|>"
    prompt = make_prompt(tokenizer, make_hits())
    seq = Templater(lambda q, h: prompt, tokenizer, end_of_turn(tokenizer)).seq(prompt, "Yes. Floods [2].")
    assert seq.ids[: seq.n_prompt] == prompt.ids
    assert seq.ids[-1] == tokenizer.eos_token_id  # what stops generation is trained too
    assert tokenizer.decode(list(seq.ids[seq.n_prompt :])) == "Yes. Floods [2].<|im_end|>"
    # the prompt plus the answer as the chat template renders a finished conversation
    full = tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "x"},
         {"role": "assistant", "content": "Yes. Floods [2]."}], tokenize=False,
    )  # fmt: skip
    assert full.endswith("<|im_start|>assistant\nYes. Floods [2].<|im_end|>\n")


def test_label_turn_follows_the_answer_as_the_constrained_step_sees_it(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    prompt = make_prompt(tokenizer, make_hits())
    system = SYSTEM  # as `make_prompt` renders it
    t = Templater(lambda q, h: prompt, tokenizer, end_of_turn(tokenizer), system)
    options = ("yes", "no", "maybe")
    answer_text = "Yes. Floods [2]."
    seq = t.label_seq(prompt, "Does it work?", answer_text, "yes", options)
    assert seq is not None
    answer = t.seq(prompt, answer_text)
    assert seq.ids[: len(answer)] == answer.ids and seq.n_prompt == answer.n_prompt
    # exactly what `ragsys.generate.labels` scores at inference: its prefix, then the option's tokens
    user = user_message(prompt.passages, "Does it work?")
    prefix = tokenizer.encode(
        label_prompt(tokenizer, system, user, answer_text, options), add_special_tokens=False
    )
    option = tokenizer.encode("Yes", add_special_tokens=False)
    assert list(seq.ids) == prefix + option
    # loss on the answer (with its end of turn) and on the label, none on the follow-up question
    ((lo, hi),) = seq.skip
    assert lo == len(answer) and hi == len(prefix)
    batch = pad([seq], pad_id=0, device=torch.device("cpu"))
    start = seq.n_prompt - 1
    trained = [int(v) for v in batch.completion[0].tolist()]
    in_loss = [seq.n_prompt <= start + i < lo or hi <= start + i < len(seq) for i in range(len(trained))]
    assert trained == [int(b) for b in in_loss]
    no_system = Templater(lambda q, h: prompt, tokenizer, "<|im_end|>")
    assert no_system.label_seq(prompt, "q", "Yes.", "yes", options) is None


def test_balanced_items_draw_each_label_equally_often_and_keep_the_epoch_length() -> None:
    labels = ["yes"] * 55 + ["no"] * 34 + ["maybe"] * 11 + [None] * 3
    items = [EvalItem(id=str(i), question=f"q{i}", split="train", label=lab) for i, lab in enumerate(labels)]
    out = balanced_items(items, ("yes", "no", "maybe"), seed=0)
    assert len(out) == len(items)
    counts = Counter(it.label for it in out)
    assert counts == {"maybe": 34, "no": 33, "yes": 33, None: 3}  # 100 labelled: 34/33/33
    # the minority is repeated (every maybe item at least 3 times), the majority subsampled
    maybe_ids = Counter(it.id for it in out if it.label == "maybe")
    assert len(maybe_ids) == 11 and min(maybe_ids.values()) >= 3
    assert len({it.id for it in out if it.label == "yes"}) == 33
    assert [it.id for it in out] == [it.id for it in balanced_items(items, ("yes", "no", "maybe"), seed=0)]
    assert [it.id for it in out] != [it.id for it in balanced_items(items, ("yes", "no", "maybe"), seed=1)]
    one_label = [it for it in items if it.label in ("yes", None)]
    assert balanced_items(one_label, ("yes", "no", "maybe"), seed=0) == one_label  # nothing to balance


def test_sft_examples_add_the_label_turn_only_for_labelled_items(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    system = SYSTEM  # as `make_prompt` renders it

    def prompt(q: str, h: Sequence[Hit]) -> Prompt:
        return build_prompt(q, h, tokenizer, system_prompt=SYSTEM, context_tokens=120)

    t = Templater(prompt, tokenizer, "<|im_end|>", system)
    hits = [make_hits()] * 3
    examples, stats = sft_examples(t, ITEMS, hits, ABSTAIN, ("yes", "no", "maybe"))
    assert [bool(e.seqs[0].skip) for e in examples] == [False, True, True]
    assert stats["label_turn"] == 2
    plain, plain_stats = sft_examples(t, ITEMS, hits, ABSTAIN)
    assert not any(e.seqs[0].skip for e in plain) and "label_turn" not in plain_stats


def test_saved_examples_keep_their_loss_free_spans(tmp_path: Path) -> None:
    examples = [Example(seqs=(Seq(ids=(1, 2, 3, 4, 5), n_prompt=1, skip=((3, 4),)),), ref=(-1.5,))]
    save_examples(tmp_path / "ex.json", examples, {"m": 1})
    assert load_examples(tmp_path / "ex.json") == (examples, {"m": 1})
    old = {"meta": {}, "examples": [{"seqs": [[[1, 2, 3], 1]], "ref": [], "desirable": True}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_examples(tmp_path / "old.json")[0][0].seqs[0] == Seq(ids=(1, 2, 3), n_prompt=1)


def test_gold_hits_are_the_gold_documents_chunks(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    from ragsys.index.build import index_paths
    from ragsys.index.reader import Index
    from ragsys.train.generator.data import gold_hits
    from tests.fixtures.corpus import write_corpus

    corpus = write_corpus(tmp_path / "docs")
    index_paths([corpus], tmp_path / "index", tiny_pipeline.index_spec(), workers=1)
    index = Index.open(tmp_path / "index")
    gold = str((corpus / "fruit.md").resolve())
    items = [EvalItem(id="a", question="q", split="train", gold_doc_ids=(gold,)),
             EvalItem(id="b", question="q", split="train")]  # fmt: skip
    hits = gold_hits(items, index, k=2)
    assert hits[1] == [] and 1 <= len(hits[0]) <= 2
    assert all(h.chunk.doc_id == gold and h.source == "gold" for h in hits[0])
