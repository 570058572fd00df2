"""Generator post-training on the tiny random Llama: targets, masks, one step per method,
feedback sources, checkpoint/resume and the time budget."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from ragsys.eval.evalset import EvalItem
from ragsys.feedback.records import new_record
from ragsys.feedback.store import FeedbackStore
from ragsys.generate.hf import GeneratorConfig
from ragsys.generate.labels import label_prompt
from ragsys.generate.prompt import Prompt, build_prompt, user_message
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.models import load_causal_lm
from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget
from ragsys.train.generator.cache import BudgetExpired, WorkCache
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.generator.data import (
    Example,
    Seq,
    Templater,
    balanced_items,
    end_of_turn,
    load_examples,
    save_examples,
    sft_examples,
    sft_target,
)
from ragsys.train.generator.feedback import (
    answer_label,
    kto_examples,
    kto_weights,
    preference_pairs,
    thumbs_from_labels,
)
from ragsys.train.generator.steps import StepContext, pad, with_reference
from ragsys.train.generator.trainer import METHODS, train_generator
from ragsys.train.lora import LoraSettings, adapter_parameters, attach_lora
from ragsys.types import Answer, Hit
from tests.corpus import write_corpus
from tests.factories import make_hit

ABSTAIN = "I do not know."
SYSTEM = "Cite [n]. Else: {abstain_text}"  # short: the tiny model's window is 256 tokens
ITEMS = (
    EvalItem(id="1", question="How much does the picking arm lift?", split="train",
             answer="Twelve kilograms.", gold_doc_ids=("robots.md",)),
    EvalItem(id="2", question="What ruined the harvest in the valley?", split="train",
             answer="Spring floods.", label="yes", gold_doc_ids=("fruit.md",)),
    EvalItem(id="3", question="How much did quarterly revenue rise?", split="train",
             answer="Eighteen percent.", label="no", gold_doc_ids=("notes.txt",)),
)  # fmt: skip
FAST = {"lora": LoraSettings(r=4, alpha=8, dropout=0.0), "batch_size": 2, "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("gen-index")
    index_paths([write_corpus(root / "corpus")], root / "idx", tiny_pipeline.index_spec(), workers=1)
    opened = Index.open(root / "idx")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def config(tiny_pipeline: PipelineConfig, tiny_lm_path: Path) -> PipelineConfig:
    generator = GeneratorConfig(
        model=str(tiny_lm_path),
        system_prompt=SYSTEM,
        abstain_text=ABSTAIN,
        context_tokens=64,
        max_new_tokens=8,
    )
    return tiny_pipeline.model_copy(update={"generator": generator, "top_k": 2})


@pytest.fixture(scope="module")
def lm(tiny_lm_path: Path) -> tuple[Any, Any]:
    return load_causal_lm(str(tiny_lm_path))


def _prompt(tokenizer: Any, hits: Sequence[Hit]) -> Prompt:
    return build_prompt("Does it work?", hits, tokenizer, system_prompt=SYSTEM, context_tokens=120)


def _hits() -> list[Hit]:
    return [
        make_hit("c1", "Harmonic drives need grease.", doc_id="/data/robots.md"),
        make_hit("c2", "Spring floods ruined the harvest.", doc_id="/data/fruit.md"),
    ]


# --- targets and tokenization ---------------------------------------------------------------


def test_sft_target_puts_the_label_first_and_cites_gold_passages(lm: tuple[Any, Any]) -> None:
    prompt = _prompt(lm[1], _hits())
    assert sft_target(ITEMS[1], prompt, ABSTAIN) == "Yes. Spring floods. [2]"
    assert sft_target(ITEMS[0], prompt, ABSTAIN) == "Twelve kilograms. [1]"


def test_sft_target_abstains_when_no_gold_passage_was_retrieved(lm: tuple[Any, Any]) -> None:
    prompt = _prompt(lm[1], _hits())
    assert sft_target(ITEMS[2], prompt, ABSTAIN) == ABSTAIN
    unsupported = EvalItem(id="x", question="q", split="train", label="maybe", gold_doc_ids=("none.md",))
    assert sft_target(unsupported, prompt, ABSTAIN) == ABSTAIN


def test_sft_target_without_gold_documents_trusts_the_answer(lm: tuple[Any, Any]) -> None:
    prompt = _prompt(lm[1], _hits())
    assert sft_target(EvalItem(id="x", question="q", split="train", answer=" Ten. "), prompt) == "Ten."
    assert sft_target(EvalItem(id="x", question="q", split="train", label="no"), prompt) == "No."
    nothing = EvalItem(id="x", question="q", split="train", gold_doc_ids=("robots.md",))
    assert sft_target(nothing, prompt, ABSTAIN) == ABSTAIN  # gold retrieved, but nothing to say


def test_completion_is_the_answer_plus_the_templates_end_of_turn(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    assert end_of_turn(tokenizer) == "<|im_end|>"
    prompt = _prompt(tokenizer, _hits())
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


def test_completion_mask_covers_exactly_the_completion_tokens(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    t = Templater(lambda q, h: _prompt(tokenizer, h), tokenizer, "<|im_end|>")
    long_seq = t.seq(_prompt(tokenizer, _hits()), "Yes. A much longer answer than the other one.")
    short_seq = t.seq(_prompt(tokenizer, _hits()[:1]), "No.")
    batch = pad([long_seq, short_seq], pad_id=0, device=torch.device("cpu"))
    start = min(long_seq.n_prompt, short_seq.n_prompt) - 1
    for b, s in enumerate([long_seq, short_seq]):
        mask = batch.completion[b].tolist()
        expected = [int(s.n_prompt <= start + t < len(s)) for t in range(batch.ids.shape[1])]
        assert mask == expected
        assert sum(mask) == len(s) - s.n_prompt
        assert batch.full_ids[b, : len(s)].tolist() == list(s.ids)
        assert batch.attention[b].sum().item() == len(s)


def test_label_turn_follows_the_answer_as_the_constrained_step_sees_it(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    prompt = _prompt(tokenizer, _hits())
    system = SYSTEM  # as `_prompt` renders it
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
    system = SYSTEM  # as `_prompt` renders it

    def prompt(q: str, h: Sequence[Hit]) -> Prompt:
        return build_prompt(q, h, tokenizer, system_prompt=SYSTEM, context_tokens=120)

    t = Templater(prompt, tokenizer, "<|im_end|>", system)
    hits = [_hits()] * 3
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


def test_the_thumb_judges_the_verdict_the_answer_states() -> None:
    class Chooser:
        asked = 0

        def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
            Chooser.asked += 1
            return "no", [0.0, 1.0, 0.0]

    class Model:
        def disable_adapter(self) -> Any:  # what `reference` enters around the label step
            return contextlib.nullcontext()

    class Ctx:
        label_options = ("yes", "no", "maybe")
        model = Model()
        generator = Chooser()

    ctx: Any = Ctx()
    assert answer_label(ctx, _answer("q", "Yes. It works.", _hits())) == "yes"
    assert Chooser.asked == 0  # the stated verdict wins over the label step
    assert answer_label(ctx, _answer("q", "It works well.", _hits())) == "no"  # none stated: the step
    assert answer_label(ctx, _answer("q", "It works well.", [])) == "maybe"  # no passages: the rule
    assert Chooser.asked == 1


# --- one optimizer step per method ----------------------------------------------------------


def _examples(method: str, tokenizer: Any) -> list[Example]:
    t = Templater(lambda q, h: _prompt(tokenizer, h), tokenizer, "<|im_end|>")
    p1, p2 = _prompt(tokenizer, _hits()), _prompt(tokenizer, _hits()[1:])
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


# --- feedback sources -----------------------------------------------------------------------


def _answer(question: str, text: str, hits: list[Hit]) -> Answer:
    return Answer(question=question, text=text, abstained=False, contexts=tuple(hits))


def test_thumbs_from_labels_rate_by_the_chosen_label() -> None:
    hits = _hits()
    answers = [
        _answer(i.question, t, hits) for i, t in zip(ITEMS, ("x", "Yes, floods.", "Yes."), strict=True)
    ]
    read = thumbs_from_labels(ITEMS, answers)  # labels read off the answer text
    assert [(r.question, r.rating) for r in read] == [(ITEMS[1].question, "up"), (ITEMS[2].question, "down")]
    assert read[0].contexts == ("c1", "c2")
    chosen = thumbs_from_labels(ITEMS, answers, labels=["yes", "no", "no"])
    assert [r.rating for r in chosen] == ["down", "up"]


def test_kto_weights_rebalance_to_the_papers_range() -> None:
    def ex(n_up: int, n_down: int) -> list[Example]:
        return [Example(seqs=(), desirable=True)] * n_up + [Example(seqs=(), desirable=False)] * n_down

    assert kto_weights(ex(4, 4), None, None) == (1.0, 1.0)
    assert kto_weights(ex(1, 4), None, None) == (4.0, 1.0)
    w_d, w_u = kto_weights(ex(8, 2), None, None)
    assert w_d * 8 / (w_u * 2) == pytest.approx(4 / 3)
    assert kto_weights(ex(1, 4), 2.0, None) == (2.0, 0.5)
    assert kto_weights(ex(1, 4), 3.0, 5.0) == (3.0, 5.0)
    assert kto_weights(ex(3, 0), None, None) == (1.0, 1.0)


def test_kto_examples_pair_each_prompt_with_another_answer(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    t = Templater(lambda q, h: _prompt(tokenizer, h), tokenizer, "<|im_end|>")
    records = [new_record(f"q{i}", f"answer {i}", (), "v", "up" if i % 2 else "down") for i in range(4)]
    prompts = [_prompt(tokenizer, _hits()[: 1 + i % 2]) for i in range(4)]
    examples, too_long = kto_examples(t, records, prompts, max_length=1000, seed=0)
    assert too_long == 0 and len(examples) == 4
    own = {tokenizer.decode(list(e.seqs[0].ids[e.seqs[0].n_prompt :])) for e in examples}
    other = {tokenizer.decode(list(e.seqs[1].ids[e.seqs[1].n_prompt :])) for e in examples}
    assert own == other == {f"answer {i}<|im_end|>" for i in range(4)}
    for e in examples:
        assert e.seqs[0].ids[: e.seqs[0].n_prompt] == e.seqs[1].ids[: e.seqs[1].n_prompt]
        assert e.seqs[0].ids != e.seqs[1].ids


def test_preference_pairs_from_revisions_and_opposite_thumbs() -> None:
    records = [
        new_record("q1", "wrong", ("c1",), "v", "down", revision="right [1]"),
        new_record("q2", "good", ("c1",), "v", "up"),
        new_record("q2", "bad", ("c2",), "v", "down"),
        new_record("q2", "worse", ("c2",), "v", "down"),
        new_record("q3", "same", (), "v", "up", revision="same"),  # no change: no pair
    ]
    pairs = preference_pairs(records)
    assert [(p.chosen, p.rejected, p.kind) for p in pairs] == [
        ("right [1]", "wrong", "revision"), ("good", "bad", "thumbs"), ("good", "worse", "thumbs"),
    ]  # fmt: skip
    assert pairs[1].source.contexts == ("c1",)  # the up answer's prompt
    assert [p.kind for p in preference_pairs(records, thumbs=False)] == ["revision"]


def _store(path: Path, index: Index) -> Path:
    chunks = list(index.store.iter_chunks())
    with FeedbackStore.open(path) as store:
        store.add_many([
            new_record(ITEMS[0].question, "Twelve kilograms [1].", (chunks[0].id,), "v", "up"),
            new_record(ITEMS[0].question, "Eleven hundred.", (chunks[1].id,), "v", "down",
                       revision="Twelve kilograms [1]."),
            new_record(ITEMS[1].question, "Spring floods.", (chunks[2].id, chunks[0].id), "v", "up"),
            new_record(ITEMS[2].question, "Robots.", ("gone-chunk",), "v", "down"),
        ])  # fmt: skip
    return path


def test_kto_trains_from_the_feedback_store(config: PipelineConfig, index: Index, tmp_path: Path) -> None:
    store = _store(tmp_path / "fb.sqlite", index)
    train = GeneratorTrainConfig(method="kto", **FAST)
    result = train_generator(config, train, index=index, feedback=store, out=tmp_path / "out")
    assert result.examples == 4 and result.steps == 2
    assert result.stats["contexts_stored"] == 3
    assert result.stats["contexts_re_retrieved"] == 1  # its chunk is not in the index: retrieved again
    assert (result.stats["desirable"], result.stats["undesirable"]) == (2, 2)
    assert (result.stats["desirable_weight"], result.stats["undesirable_weight"]) == (1.0, 1.0)
    assert all(loss == loss for loss in result.epoch_losses)  # not NaN


@pytest.fixture(scope="module")
def lively_lm(tiny_lm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama redrawn wider (at init scale it repeats one token: answers would be empty and
    every revision would equal its draft), with a window that fits the reviser's longer prompt."""
    model, tokenizer = load_causal_lm(str(tiny_lm_path))
    model.config.max_position_embeddings = tokenizer.model_max_length = 1024  # rotary: any length works
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.5, generator=gen)
    out = tmp_path_factory.mktemp("reviser") / "lm"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_kto_thumbs_from_eval_labels(
    config: PipelineConfig, index: Index, lm: tuple[Any, Any], lively_lm: Path, tmp_path: Path
) -> None:
    assert config.generator is not None
    lively = config.model_copy(
        update={"generator": config.generator.model_copy(update={"model": str(lively_lm)})}
    )
    train = GeneratorTrainConfig(method="kto", max_new_tokens=2, **FAST)
    result = train_generator(lively, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert result.stats["label_thumbs"] == 2  # the two labelled items
    assert result.stats["desirable"] + result.stats["undesirable"] == result.examples == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / "work.jsonl").read_text().splitlines()[1:]]
    thumbs = [r["value"] for r in rows if r["kind"] == "thumb"]
    assert {t["label"] for t in thumbs} <= set(train.label_options)
    assert all(len(lm[1].encode(t["text"], add_special_tokens=False)) <= 2 for t in thumbs)  # max_new_tokens


@pytest.mark.parametrize("method", ["dpo", "apo-zero", "apo-down", "clair"])
def test_preference_methods_train_from_feedback(
    method: str, config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    store = _store(tmp_path / "fb.sqlite", index)
    train = GeneratorTrainConfig(method=method, **FAST)  # type: ignore[arg-type]
    result = train_generator(config, train, index=index, feedback=store, out=tmp_path / "out")
    assert result.stats["pairs_revision"] == 1
    assert result.examples == (1 if method == "clair" else 2)  # clair: revisions only
    assert result.steps == 1 and not result.stopped_early


def test_clair_with_a_reviser_model(
    config: PipelineConfig, index: Index, lively_lm: Path, tmp_path: Path
) -> None:
    train = GeneratorTrainConfig(method="clair", reviser=str(lively_lm), **FAST)
    result = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert result.stats["pairs_reviser"] == result.examples >= 1
    assert result.stats["pairs_reviser"] + result.stats.get("revise_unchanged", 0) + result.stats.get(
        "revise_skipped_too_long", 0
    ) == len(ITEMS)
    assert result.steps >= 1


# --- the SFT entry point, checkpoints, resume, budget -----------------------------------------


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_sft_writes_an_adapter_the_pipeline_loads(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    progress: list[Any] = []
    train = GeneratorTrainConfig(method="sft", epochs=2, **FAST)
    result = train_generator(
        config, train, index=index, items=ITEMS, out=tmp_path / "out", progress=progress.append
    )
    assert result.adapter == (tmp_path / "out" / "adapter").resolve()
    assert result.pipeline.generator is not None and result.pipeline.generator.adapter == str(result.adapter)
    assert result.pipeline.model_copy(update={"generator": config.generator}) == config
    assert result.examples == 3 and result.steps == 4 and len(result.epoch_losses) == 2
    assert result.epoch_losses[1] < result.epoch_losses[0]
    assert {p.phase for p in progress} == {"retrieve", "train"}
    assert [p.done for p in progress if p.phase == "train"] == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == ["epoch-1", "epoch-2"]
    generator = result.pipeline.generator.build()
    answer = generator.generate(ITEMS[0].question, [make_hit("c", "The arm lifts twelve kilograms.")])
    assert isinstance(answer.text, str)


def test_resume_from_a_mid_run_checkpoint_matches_an_uninterrupted_run(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    # dropout on and gradient accumulation: the RNG state and step boundaries must survive too
    settings = FAST | {"batch_size": 1, "lora": LoraSettings(r=4, alpha=8, dropout=0.3)}
    base = GeneratorTrainConfig(method="sft", epochs=2, grad_accum=2, **settings)
    whole = train_generator(config, base, index=index, items=ITEMS, out=tmp_path / "whole")
    assert whole.steps == 4 and not whole.stopped_early

    cut = base.model_copy(update={"max_minutes": 1e-9})  # expires at once: stops after the first step
    first = train_generator(config, cut, index=index, items=ITEMS, out=tmp_path / "cut")
    assert first.stopped_early and first.steps == 1
    checkpoints = tmp_path / "cut" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["epoch-1-step-1"]
    assert (checkpoints / "epoch-1-step-1" / "state.json").is_file()
    assert (tmp_path / "cut" / "adapter" / "adapter_model.safetensors").is_file()

    second = train_generator(config, base, index=index, items=ITEMS, out=tmp_path / "cut")
    assert second.resumed_from == checkpoints / "epoch-1-step-1"
    assert second.steps == 4 and not second.stopped_early
    assert second.epoch_losses == whole.epoch_losses
    a, b = _weights(whole.adapter), _weights(second.adapter)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-1", "epoch-2"]  # step ones pruned


def test_budget_expiring_at_an_epoch_end_checkpoints_and_a_finished_run_is_not_redone(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    cut = GeneratorTrainConfig(method="sft", epochs=2, max_minutes=1e-9, **(FAST | {"batch_size": 4}))
    first = train_generator(config, cut, index=index, items=ITEMS, out=tmp_path / "out")
    assert first.stopped_early and first.steps == 1 and len(first.epoch_losses) == 1
    assert [p.name for p in (tmp_path / "out" / "checkpoints").iterdir()] == ["epoch-1"]
    rest = train_generator(config, cut.model_copy(update={"max_minutes": None}), index=index, items=ITEMS,
                           out=tmp_path / "out")  # fmt: skip
    again = train_generator(config, cut.model_copy(update={"max_minutes": None}), index=index, items=ITEMS,
                            out=tmp_path / "out")  # fmt: skip
    assert rest.steps == again.steps == 2 and again.epoch_losses == rest.epoch_losses
    assert again.resumed_from == tmp_path / "out" / "checkpoints" / "epoch-2"


def test_a_different_run_refuses_to_resume(config: PipelineConfig, index: Index, tmp_path: Path) -> None:
    train = GeneratorTrainConfig(method="sft", **FAST)
    train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    with pytest.raises(ValueError, match="different settings"):
        train_generator(config, train.model_copy(update={"learning_rate": 1e-3}), index=index, items=ITEMS,
                        out=tmp_path / "out")  # fmt: skip


def test_examples_longer_than_max_length_are_dropped(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    examples = json.loads((_sft_run(config, index, tmp_path / "a")).read_text())["examples"]
    lengths = sorted(len(e["seqs"][0][0]) for e in examples)
    train = GeneratorTrainConfig(method="sft", max_length=lengths[1], **FAST)
    result = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "b")
    assert result.examples == sum(n <= lengths[1] for n in lengths)
    assert result.dropped_too_long == 3 - result.examples


def _sft_run(config: PipelineConfig, index: Index, out: Path) -> Path:
    train_generator(config, GeneratorTrainConfig(method="sft", **FAST), index=index, items=ITEMS, out=out)
    path = out / "examples.json"
    shutil.copy(path, out / "examples.copy.json")
    return out / "examples.copy.json"


def test_errors_name_the_fix(config: PipelineConfig, index: Index, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train items"):
        train_generator(config, GeneratorTrainConfig(method="sft"), index=index, out=tmp_path / "a")
    with pytest.raises(ValueError, match="feedback store"):
        train_generator(config, GeneratorTrainConfig(method="dpo"), index=index, out=tmp_path / "b")
    assert config.generator is not None
    tuned = config.model_copy(update={"generator": config.generator.model_copy(update={"adapter": "x"})})
    with pytest.raises(ValueError, match="stack_on_adapter"):
        train_generator(tuned, GeneratorTrainConfig(), index=index, items=ITEMS, out=tmp_path / "c")


# --- the data phase under a budget ----------------------------------------------------------


def test_work_cache_keeps_finished_units_across_calls(tmp_path: Path) -> None:
    path, calls = tmp_path / "work.jsonl", []

    def compute() -> list[float]:
        calls.append(1)
        return [0.1 + 0.2, -1e-300]

    assert WorkCache(path, "run-a").get("reference", "0.0", compute) == [0.1 + 0.2, -1e-300]
    assert WorkCache(path, "run-a").get("reference", "0.0", compute) == [0.1 + 0.2, -1e-300]  # exact floats
    assert len(calls) == 1
    with path.open("a") as f:
        f.write('{"kind": "reference", "key": "cut')  # a line a crash cut short is redone, not fatal
    assert len(WorkCache(path, "run-a")) == 1
    assert len(WorkCache(path, "run-b")) == 0  # another run's work is discarded
    with pytest.raises(BudgetExpired):
        WorkCache(path, "run-b", TimeBudget(0.0)).get("thumb", "1", compute)
    assert len(calls) == 1


def test_budget_expiring_while_generating_thumbs_stops_and_the_next_call_finishes(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    train = GeneratorTrainConfig(method="kto", max_minutes=1e-9, **FAST)
    stopped = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert stopped.stopped_early and stopped.steps == 0 and stopped.examples == 0
    assert (tmp_path / "out" / "work.jsonl").is_file()
    done = train_generator(config, train.model_copy(update={"max_minutes": None}), index=index, items=ITEMS,
                           out=tmp_path / "out")  # fmt: skip
    assert not done.stopped_early and done.examples == 2
    kinds = [
        json.loads(line).get("kind") for line in (tmp_path / "out" / "work.jsonl").read_text().splitlines()
    ]
    assert kinds.count("thumb") == 2 and "reference" in kinds


def test_gradient_checkpointing_trains_the_adapter(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    train = GeneratorTrainConfig(method="sft", gradient_checkpointing=True, **FAST)
    result = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    weights = _weights(result.adapter)
    assert result.steps == 2
    assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero


def test_gold_hits_are_the_gold_documents_chunks(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    from ragsys.index.build import index_paths
    from ragsys.index.reader import Index
    from ragsys.train.generator.data import gold_hits
    from tests.corpus import write_corpus

    corpus = write_corpus(tmp_path / "docs")
    index_paths([corpus], tmp_path / "index", tiny_pipeline.index_spec(), workers=1)
    index = Index.open(tmp_path / "index")
    gold = str((corpus / "fruit.md").resolve())
    items = [EvalItem(id="a", question="q", split="train", gold_doc_ids=(gold,)),
             EvalItem(id="b", question="q", split="train")]  # fmt: skip
    hits = gold_hits(items, index, k=2)
    assert hits[1] == [] and 1 <= len(hits[0]) <= 2
    assert all(h.chunk.doc_id == gold and h.source == "gold" for h in hits[0])
