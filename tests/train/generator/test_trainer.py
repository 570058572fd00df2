"""`train_generator` on the tiny random Llama: every method from feedback or eval labels,
checkpoints, resume and the time budget."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from ragsys.encoders.backend import has_bf16
from ragsys.feedback.records import new_record
from ragsys.feedback.store import FeedbackStore
from ragsys.generate.config import GeneratorConfig
from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.models import load_causal_lm
from ragsys.pipeline import PipelineConfig
from ragsys.train.generator import feedback
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.generator.data import own_answer
from ragsys.train.generator.trainer import train_generator
from ragsys.train.lora import LoraSettings
from ragsys.types import Answer
from tests.fixtures.corpus import write_corpus
from tests.fixtures.factories import make_hit
from tests.fixtures.train_generator import ABSTAIN, ITEMS, SYSTEM

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
        max_new_tokens=48,  # the SFT targets fit (`Templater.fit`)
    )
    return tiny_pipeline.model_copy(update={"generator": generator, "top_k": 2})


def _store(path: Path, index: Index, v: str) -> Path:
    """Feedback on answers of version `v`, and one record of another version (never used)."""
    chunks = list(index.store.iter_chunks())
    with FeedbackStore.open(path) as store:
        store.add_many([
            new_record(ITEMS[0].question, "Twelve kilograms [1].", (chunks[0].id,), v, "up"),
            new_record(ITEMS[0].question, "Eleven hundred.", (chunks[1].id,), v, "down",
                       revision="Twelve kilograms [1]."),
            new_record(ITEMS[1].question, "Spring floods.", (chunks[2].id, chunks[0].id), v, "up"),
            new_record(ITEMS[2].question, "Robots.", ("gone-chunk",), v, "down"),
            new_record(ITEMS[1].question, "An older pipeline's answer.", (chunks[2].id,), "older-v", "down",
                       revision="Spring floods [1]."),
        ])  # fmt: skip
    return path


def test_kto_trains_from_the_feedback_store(config: PipelineConfig, index: Index, tmp_path: Path) -> None:
    store = _store(tmp_path / "fb.sqlite", index, config.version())
    train = GeneratorTrainConfig(method="kto", **FAST)
    result = train_generator(config, train, index=index, feedback=store, out=tmp_path / "out")
    assert result.feedback == {"thumbs_up": 2, "thumbs_down": 2, "revisions": 1,
                               "skipped_other_versions": 1, "duplicates": 0,
                               "skipped_held_out": 0}  # fmt: skip
    assert result.feedback_version == config.version()
    # 4 thumbs, and the revision as an up thumb on its answer's prompt
    assert result.examples == 5 and result.steps == 3 and result.stats["revision_thumbs"] == 1
    assert result.stats["contexts_stored"] == 4
    assert result.stats["contexts_re_retrieved"] == 1  # its chunk is not in the index: retrieved again
    assert (result.stats["desirable"], result.stats["undesirable"]) == (3, 2)
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
    config: PipelineConfig, index: Index, lively_lm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.generator is not None
    lively = config.model_copy(
        update={"generator": config.generator.model_copy(update={"model": str(lively_lm)})}
    )
    # the own answers' token counts, read where they are made: re-encoding a decoded answer is not
    # a count of its tokens (a random model's stray byte decodes to U+FFFD, three bytes again)
    written: list[float] = []

    def counted(*args: Any) -> Answer:
        answer = own_answer(*args)
        written.append(answer.timings["new_tokens"])
        return answer

    monkeypatch.setattr(feedback, "own_answer", counted)
    train = GeneratorTrainConfig(method="kto", max_new_tokens=2, **FAST)
    result = train_generator(lively, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert result.stats["label_thumbs"] == 2  # the two labelled items, judged by their label
    assert result.stats["reference_thumbs"] == 1  # the other, judged against its reference answer
    # ... wrong, so its revision (the SFT target) is an up thumb too
    assert result.stats["revision_thumbs"] == 1
    assert result.stats["desirable"] + result.stats["undesirable"] == result.examples == 4
    rows = [json.loads(line) for line in (tmp_path / "out" / "work.jsonl").read_text().splitlines()[1:]]
    thumbs = [r["value"] for r in rows if r["kind"] == "thumb"]
    assert len([r for r in rows if r["kind"] == "mistake"]) == 1
    assert {t["label"] for t in thumbs} <= set(train.label_options)
    assert len(written) == 3 and all(0 < n <= 2 for n in written)  # max_new_tokens


@pytest.mark.parametrize("method", ["dpo", "apo-zero", "apo-down", "clair"])
def test_preference_methods_train_from_feedback(
    method: str, config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    store = _store(tmp_path / "fb.sqlite", index, config.version())
    train = GeneratorTrainConfig(method=method, **FAST)  # type: ignore[arg-type]
    result = train_generator(config, train, index=index, feedback=store, out=tmp_path / "out")
    assert result.stats["pairs_revision"] == 1  # the older version's revision is not among them
    assert result.feedback["revisions"] == 1 and result.feedback["skipped_other_versions"] == 1
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


@pytest.mark.skipif(not has_bf16(), reason="this CPU has no bf16 instructions")
def test_sft_in_bf16_lowers_the_loss(config: PipelineConfig, index: Index, tmp_path: Path) -> None:
    train = GeneratorTrainConfig(method="sft", epochs=2, bf16=True, **FAST)
    result = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert result.steps == 4 and result.epoch_losses[1] < result.epoch_losses[0]


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


def test_budget_expiring_while_generating_thumbs_stops_and_the_next_call_finishes(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    train = GeneratorTrainConfig(method="kto", max_minutes=1e-9, **FAST)
    stopped = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    assert stopped.stopped_early and stopped.steps == 0 and stopped.examples == 0
    assert (tmp_path / "out" / "work.jsonl").is_file()
    done = train_generator(config, train.model_copy(update={"max_minutes": None}), index=index, items=ITEMS,
                           out=tmp_path / "out")  # fmt: skip
    assert not done.stopped_early and done.examples == 4  # 3 thumbs and the mistake's revision
    kinds = [
        json.loads(line).get("kind") for line in (tmp_path / "out" / "work.jsonl").read_text().splitlines()
    ]
    assert kinds.count("thumb") == 2 and kinds.count("mistake") == 1 and "reference" in kinds


def test_gradient_checkpointing_trains_the_adapter(
    config: PipelineConfig, index: Index, tmp_path: Path
) -> None:
    train = GeneratorTrainConfig(method="sft", gradient_checkpointing=True, **FAST)
    result = train_generator(config, train, index=index, items=ITEMS, out=tmp_path / "out")
    weights = _weights(result.adapter)
    assert result.steps == 2
    assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero
