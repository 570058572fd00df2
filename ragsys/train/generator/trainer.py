"""Post-training of the generator as a LoRA adapter: SFT, KTO, DPO, APO and CLAIR.

`train_generator` loads the pipeline's generator model, attaches a fresh adapter, builds
the examples of the chosen method (`METHODS`: data builder, step loss, whether it needs
reference log-probs), computes reference log-probs once with the adapter off (up to
`DATA_SHARE` of the budget: the examples not scored by then are dropped), trains, and returns
the pipeline config with `generator.adapter` pointing at the result.

Output folder: `adapter/` (the adapter, also after a run stopped by its budget),
`checkpoints/` (see `ragsys.train.generator.checkpoint`), `examples.json` (the built examples with their
reference log-probs, so a resumed run trains on exactly the same data without
retrieving, generating or scoring again). Calling again with the same `out` resumes.

Example:
    >>> result = train_generator(config, GeneratorTrainConfig(method="sft", max_minutes=60),  # doctest: +SKIP
    ...                          index=Index.open(Path("idx")), items=train_items, out=Path("tuned/gen"))
    >>> result.pipeline.save(Path("tuned/gen"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragsys.eval.evalset import EvalItem
from ragsys.feedback.select import FeedbackSelection, resolve_version, select_feedback
from ragsys.generate.hf import GeneratorConfig, HFGenerator
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget, seed_everything
from ragsys.train.generator.cache import BudgetExpired, WorkCache
from ragsys.train.generator.config import GeneratorTrainConfig, GeneratorTrainResult
from ragsys.train.generator.data import (
    Built,
    DataContext,
    Example,
    NoTrainingExamples,
    SearchFn,
    Templater,
    drop_too_long,
    end_of_turn,
    load_examples,
    save_examples,
)
from ragsys.train.generator.feedback import NoPreferenceSignal, clair_data, kto_data, kto_weights, pair_data
from ragsys.train.generator.grounding import sft_grounded_data
from ragsys.train.generator.loop import LoopResult, ProgressFn, TrainProgress, run_loop
from ragsys.train.generator.steps import (
    StepContext,
    StepLoss,
    kto_step,
    paired_step,
    sft_step,
    with_reference,
)
from ragsys.train.lora import attach_lora, save_adapter
from ragsys.train.parallel import current_world
from ragsys.types import Hit

# config.py names PipelineConfig for type checkers only; the result is made here.
GeneratorTrainResult.model_rebuild(_types_namespace={"PipelineConfig": PipelineConfig})

CONSUMES = {"kto": ("thumbs_up", "thumbs_down", "revisions"), "clair": ("revisions",), "sft": ()}
EXAMPLES = "examples.json"
# preference methods: the reference pass stops once this share of --max-minutes is spent (with at
# least one example scored), so the run trains on what was scored. On the 10-Q feedback loop,
# KTO's data (own answers, then ~2 s of reference scoring per sequence for 840 sequences) took
# all 30 of its minutes and the run trained 0 steps.
DATA_SHARE = 0.5
ANSWER_SHARE = 0.25  # and the model's own answers (data from its mistakes) stop at this share
WORK = "work.jsonl"


@dataclass(frozen=True)
class MethodSpec:
    data: Callable[[DataContext], Built]
    step: StepLoss
    reference: bool  # needs reference log-probs


METHODS: dict[str, MethodSpec] = {
    "sft": MethodSpec(sft_grounded_data, sft_step, reference=False),
    "kto": MethodSpec(kto_data, kto_step, reference=True),
    "dpo": MethodSpec(pair_data, paired_step("dpo"), reference=True),
    "apo-zero": MethodSpec(pair_data, paired_step("apo-zero"), reference=True),
    "apo-down": MethodSpec(pair_data, paired_step("apo-down"), reference=True),
    "clair": MethodSpec(clair_data, paired_step("apo-zero"), reference=True),  # CLAIR pairs with APO-zero
}


def train_generator(
    config: PipelineConfig, train: GeneratorTrainConfig, *, index: Index, items: Sequence[EvalItem] = (),
    feedback: Path | None = None, out: Path, progress: ProgressFn | None = None,
) -> GeneratorTrainResult:  # fmt: skip
    """Train (or resume training) a LoRA adapter for `config.generator`; see the module docstring."""
    started = time.monotonic()
    gc = _generator_config(config)
    version = resolve_version(train.feedback_version, config.version())
    train = train.model_copy(update={"feedback_version": version})
    model, tokenizer = _load(gc, train)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(
        config, train, gc, model, tokenizer, index, items, feedback, out, progress,
        TimeBudget(train.max_minutes), run_fingerprint(config, train, index, items, feedback),
    )  # fmt: skip
    spec = METHODS[train.method]
    try:
        examples, meta = _examples_once(run, spec)
    except BudgetExpired:  # stopped while generating or scoring: the work cache keeps what is done
        nothing = {"stats": {}, "dropped": 0, "feedback": {}}
        return run.result(LoopResult((), 0, True, None), [], nothing, started)
    weights = (1.0, 1.0)
    if train.method == "kto":
        weights = kto_weights(examples, train.desirable_weight, train.undesirable_weight)
        meta["stats"] |= {"desirable_weight": weights[0], "undesirable_weight": weights[1]}
    ctx = StepContext(_pad_id(tokenizer), train.beta, *weights)
    seed_everything(train.seed)  # dropout draws must not depend on what the data phase drew (or skipped)
    loop = run_loop(
        model, examples, spec.step, ctx, train, out / "checkpoints", run.fingerprint, run.budget, progress
    )
    return run.result(loop, examples, meta, started)


def _examples_once(run: _Run, spec: MethodSpec) -> tuple[list[Example], dict[str, Any]]:
    """Data-parallel (ragsys.train.parallel): the main process builds and saves the examples
    (retrieval, generation, reference log-probs) and the others load its file."""
    world = current_world()
    if not world.main:
        world.barrier()
    try:
        return run.examples(spec)
    finally:
        if world.main:
            world.barrier()


def _generator_config(config: PipelineConfig) -> GeneratorConfig:
    if config.generator is None:
        raise ValueError(
            f"pipeline {config.name!r} has no generator to train; add `generator=GeneratorConfig()`"
        )
    if config.generator.adapter is not None:
        raise ValueError(
            f"pipeline {config.name!r}'s generator already has an adapter ({config.generator.adapter}); "
            "merge it into the base first (ragsys.train.merge.stack_on_adapter), then train a new one"
        )
    return config.generator


def _load(gc: GeneratorConfig, train: GeneratorTrainConfig) -> tuple[Any, Any]:
    from ragsys.models import default_device, load_causal_lm

    loaded, tokenizer = load_causal_lm(gc.model)
    model: Any = loaded  # transformers leaves `.to` and the checkpointing switches loosely typed
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model {gc.model!r} has no chat template; the generator prompts through one")
    model.to(default_device())
    if train.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()  # the frozen embeddings give checkpointed blocks no grad input
    seed_everything(train.seed)  # peft draws lora_A from the global RNG
    return attach_lora(model, train.lora), tokenizer


def _pad_id(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0  # any id works: padded positions are masked out of attention and loss


def run_fingerprint(
    config: PipelineConfig, train: GeneratorTrainConfig, index: Index, items: Sequence[EvalItem],
    feedback: Path | None,
) -> str:  # fmt: skip
    """What decides the examples and the training: a checkpoint resumes only an identical run."""
    blob = {
        "pipeline": config.model_dump(mode="json"),
        # balance_labels only when on: checkpoints written before the option existed still resume
        "train": train.model_dump(
            mode="json",
            exclude={"max_minutes"}
            | (set() if train.balance_labels else {"balance_labels"})
            | (set() if feedback is not None else {"feedback_version"})  # unused without a store
            | (set() if train.feedback_held_out else {"feedback_held_out"}),
        ),
        "index_generation": index.manifest.generation,
        "items": [i.model_dump(mode="json", exclude={"meta"}) for i in items],
        "feedback": None if feedback is None else str(Path(feedback).resolve()),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Run:
    """One call's inputs and loaded model, so the phases below need not pass a dozen arguments."""

    config: PipelineConfig
    train: GeneratorTrainConfig
    gc: GeneratorConfig
    model: Any
    tokenizer: Any
    index: Index
    items: Sequence[EvalItem]
    feedback: Path | None
    out: Path
    progress: ProgressFn | None
    budget: TimeBudget
    fingerprint: str

    def examples(self, spec: MethodSpec) -> tuple[list[Example], dict[str, Any]]:
        """The examples saved by an earlier call of the same run, else freshly built (and saved)."""
        path = self.out / EXAMPLES
        if path.is_file():
            examples, meta = load_examples(path)
            if meta.get("fingerprint") == self.fingerprint:
                return examples, meta
            checkpoints = self.out / "checkpoints"
            if checkpoints.is_dir() and any(checkpoints.iterdir()):
                raise ValueError(
                    f"{self.out} holds a run with different settings or data; pass a new output folder "
                    "to start another run, or use the same settings to resume this one"
                )
        examples, meta = self.build(spec)
        if not examples:
            error = NoTrainingExamples if self.train.method == "sft" else NoPreferenceSignal
            raise error(f"no training examples ({meta['stats']}); check the eval set / feedback source")
        save_examples(path, examples, meta | {"fingerprint": self.fingerprint})
        return examples, meta

    def build(self, spec: MethodSpec) -> tuple[list[Example], dict[str, Any]]:
        answering = self.gc.for_training()  # the model's own answers, as its torch model writes them
        if self.train.max_new_tokens is not None:  # as the eval will answer, e.g. 48 tokens
            answering = answering.model_copy(update={"max_new_tokens": self.train.max_new_tokens})
        generator = HFGenerator(answering, self.model, self.tokenizer)
        report = _reporter(self.progress)
        cache = WorkCache(self.out / WORK, self.fingerprint, self.budget)
        selected = read_feedback(self.feedback, self.train.feedback_version, self.train.feedback_held_out)
        ctx = DataContext(
            templater=Templater(
                generator.prompt, self.tokenizer, end_of_turn(self.tokenizer), generator.config.system_text(),
                max_new_tokens=self.gc.max_new_tokens,  # what the eval lets it write
            ),
            model=self.model, generator=generator, index=self.index, items=self.items,
            search=_lazy_search(self.config, self.index, self.train.k or self.config.top_k, report),
            feedback=selected.records, max_length=self.train.max_length, seed=self.train.seed,
            label_options=self.train.label_options, reviser=self.train.reviser, on_progress=report,
            cache=cache, contexts=self.train.contexts, k=self.train.k or self.config.top_k,
            balance_labels=self.train.balance_labels, targets=self.train.targets,
            stop_answering=lambda: self.budget.spent_share() >= ANSWER_SHARE,
        )  # fmt: skip
        self.model.train(False)
        examples, stats = spec.data(ctx)
        examples, dropped = drop_too_long(examples, self.train.max_length)
        if spec.reference and examples:
            built = len(examples)
            examples = with_reference(
                self.model, examples, _pad_id(self.tokenizer), self.train.batch_size,
                lambda done, total: report("reference", done, total), cache,
                stop=lambda: self.budget.spent_share() >= DATA_SHARE,
            )  # fmt: skip
            if len(examples) < built:
                stats["dropped_for_time"] = built - len(examples)
        used = consumed(selected, self.train.method) if self.feedback is not None else {}
        # zeros are kept: a KTO run whose thumbs all went one way still reports the other side as 0
        return examples, {"stats": dict(stats), "dropped": dropped, "feedback": used}

    def result(
        self, loop: LoopResult, examples: Sequence[Example], meta: dict[str, Any], started: float
    ) -> GeneratorTrainResult:
        """Saves the adapter (also after an early stop: a partial adapter can be evaluated)."""
        world = current_world()
        adapter = (self.out / "adapter").resolve()
        if world.main:  # every process holds the same adapter
            adapter = save_adapter(self.model, self.out / "adapter").resolve()
        world.barrier()
        generator = self.gc.model_copy(update={"adapter": str(adapter)})
        return GeneratorTrainResult(
            method=self.train.method, adapter=adapter,
            pipeline=self.config.model_copy(update={"generator": generator}),
            epoch_losses=loop.epoch_losses, examples=len(examples), dropped_too_long=int(meta["dropped"]),
            stats=dict(meta["stats"]), feedback=dict(meta.get("feedback", {})),
            feedback_version=self.train.feedback_version if self.feedback is not None else None,
            steps=loop.steps, stopped_early=loop.stopped_early,
            resumed_from=loop.resumed_from, minutes=(time.monotonic() - started) / 60.0,
        )  # fmt: skip


def _reporter(progress: ProgressFn | None) -> Callable[[str, int, int], None]:
    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(TrainProgress(phase, done, total))

    return report


def _lazy_search(
    config: PipelineConfig, index: Index, k: int, report: Callable[[str, int, int], None]
) -> SearchFn:
    """Retrieval built on first use: methods that read stored contexts never load the encoders."""
    built: list[Any] = []

    def search(queries: Sequence[str]) -> list[list[Hit]]:

        if not built:
            built.append(config.build(index, generator=False))
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            report("retrieve", done[0], len(queries))

        result: list[list[Hit]] = built[0].search_many(queries, k, on_progress=tick)
        return result

    return search


def consumed(selected: FeedbackSelection, method: str) -> dict[str, int]:
    """The selection's counts, with what `method` does not learn from set to 0 (KTO reads the
    thumbs, CLAIR the revisions, SFT neither; DPO and APO both: revisions and up/down pairs)."""
    counts = selected.counts()
    used = CONSUMES.get(method, ("thumbs_up", "thumbs_down", "revisions"))
    return {k: v if k in used or k not in ("thumbs_up", "thumbs_down", "revisions") else 0
            for k, v in counts.items()}  # fmt: skip


def read_feedback(path: Path | None, version: str, held_out: Collection[str] = ()) -> FeedbackSelection:
    """The store's records of `version` ("all": every one), deduplicated, without those about a
    `held_out` question (ragsys.feedback.select)."""
    if path is None:
        return FeedbackSelection(records=(), version=version, skipped_other_versions=0, duplicates=0)
    from ragsys.feedback.store import FeedbackStore

    if not Path(path).exists():
        raise ValueError(f"feedback store {path} not found; pass the --feedback file the server writes")
    with FeedbackStore.open(Path(path), readonly=True) as store:
        return select_feedback(store.records(), version, held_out)
