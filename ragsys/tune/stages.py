"""The stages of `ragsys tune`, in order. Each takes the current candidate (pipeline config
and the index it searches) and proposes a new one, or says why it does not apply.

Joint, not isolated: every stage trains against what the stages before it produced. Hard
negatives for the retriever and the reranker are mined from the *current* pipeline; the
retriever and reranker also learn from the generator's likelihood of the reference answer
(LM supervision); the generator is fine-tuned on what the tuned retriever actually returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.dense import DenseConfig
from ragsys.train.budget import TimeBudget
from ragsys.train.generator.config import GeneratorTrainConfig
from ragsys.train.mining.synthetic import SyntheticConfig
from ragsys.train.reranker import RerankerTrainConfig
from ragsys.train.retriever import RetrieverTrainConfig
from ragsys.tune.scoring import ANSWER, RETRIEVAL, Scorer, passages_for
from ragsys.types import Chunk, Frozen

StageName = Literal["synthetic", "retriever", "reranker", "mixture", "context", "generator", "preference"]
STAGE_ORDER: tuple[StageName, ...] = (
    "synthetic",
    "retriever",
    "reranker",
    "mixture",
    "context",
    "generator",
    "preference",
)
Progress = Callable[[str, int, int], None]


class TuneSettings(Frozen):
    dev_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_dev: int | None = Field(default=200, ge=1)
    dev_answers: int = Field(default=100, ge=1, description="dev questions scored end to end (slow)")
    alpha: float = Field(default=0.1, gt=0, le=1, description="a stage stays only if p < alpha on dev")
    synthetic_below: int = Field(default=200, ge=0, description="write synthetic queries below this many")
    synthetic: SyntheticConfig = SyntheticConfig()
    retriever: RetrieverTrainConfig = RetrieverTrainConfig()
    # The settings that made the MiniLM cross-encoder learn on SciFact (issue 5's measurements):
    # lr 1e-4 with inverse-cloze pseudo-queries added; at 3e-5 on the labels alone it stayed at chance.
    # Steps of 16 questions, taken as 2 batches of 8: one batch of 16 x 5 passages x 192 tokens
    # took the process to 8.0 GB after 12 steps (8.4 GB peak in a SciFact tune), over the 8 GB
    # target; batches of 8 peaked at 5.0 GB. Plain steps of 8 (217 instead of 109) left the
    # reranker's dev gain unshown on SciFact (+0.018, p = 0.145, reverted).
    reranker: RerankerTrainConfig = RerankerTrainConfig(
        n_negatives=3, epochs=1.0, max_length=192, learning_rate=1e-4, batch_size=8, grad_accum=2
    )
    reranker_ict: int = Field(default=1000, ge=0, description="inverse-cloze pseudo-queries for the reranker")
    # Batch 1, as the issue-5 PubMedQA runs: the default batch of 4 long RAG prompts peaked near
    # 11 GB on the CPU, over the 8 GB target; examples are sorted by length either way.
    # Labels balanced: on PubMedQA plain SFT collapsed to "yes" for every question.
    generator: GeneratorTrainConfig = GeneratorTrainConfig(batch_size=1, balance_labels=True)
    lm_k: int = Field(default=5, ge=2, description="passages per question the LM judges")
    lm_questions: int = Field(default=300, ge=0, description="train questions given LM supervision")
    answer_k: int = Field(default=3, ge=1, description="passages given to the generator")
    context_passages: tuple[int, ...] = Field(
        default=(1, 3, 5), description="context stage: passages per prompt to choose among"
    )
    context_questions: int = Field(
        default=30, ge=1, description="context stage: train questions answered per choice"
    )
    stages: tuple[StageName, ...] = STAGE_ORDER
    isolated: bool = True
    report_answers: int | None = Field(
        default=None, ge=1, description="test questions answered in the report"
    )


@dataclass
class Proposal:
    config: PipelineConfig
    index_dir: Path
    metric: str | None  # None: a data stage, nothing to keep or revert
    extra: dict[str, Any] = field(default_factory=dict)
    rejected: str | None = None  # the stage already knows it does not help (e.g. the reranker's dev check)


@dataclass
class TuneContext:
    settings: TuneSettings
    seed: int
    train: Sequence[EvalItem]
    dev: Sequence[EvalItem]
    feedback: Path | None
    scorer: Scorer
    budget: TimeBudget
    progress: Progress
    log: Callable[[str], None]
    synthetic: list[tuple[str, Chunk]] = field(default_factory=list)

    def minutes_left(self) -> float | None:
        left = self.budget.remaining_s()
        return None if left == float("inf") else max(left / 60.0, 0.01)

    def train_progress(self, p: Any) -> None:
        """Adapts the generator trainer's `TrainProgress` reports to (phase, done, total)."""
        self.progress(f"generator {p.phase}", p.done, p.total)

    def index_reporter(self, prefix: str) -> PhaseReporter:
        """Index building's progress (a `Reporter`) shown as tune phases."""
        return PhaseReporter(self, prefix)

    def counter(self, phase: str, total: int) -> Callable[[int], None]:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.progress(phase, done, total)

        return tick


class PhaseReporter:
    """`ragsys.index.progress.Reporter` over `TuneContext.progress`: re-embedding a corpus is
    minutes of a stage's time and would otherwise show nothing."""

    def __init__(self, ctx: TuneContext, prefix: str) -> None:
        self._ctx, self._prefix = ctx, prefix
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def stage(self, name: str, total: int) -> None:
        self._done[name], self._total[name] = 0, total
        self._ctx.progress(f"{self._prefix}: {name}", 0, total)

    def advance(self, name: str, n: int = 1) -> None:
        self._done[name] = self._done.get(name, 0) + n
        self._ctx.progress(f"{self._prefix}: {name}", self._done[name], self._total.get(name, 0))

    def log(self, message: str) -> None:
        self._ctx.log(message)


Stage = Callable[[TuneContext, PipelineConfig, Path, Path], "Proposal | str"]


def with_gold(items: Sequence[EvalItem]) -> list[EvalItem]:
    return [it for it in items if it.gold_doc_ids or it.gold_chunk_ids]


def with_reference(items: Sequence[EvalItem]) -> list[EvalItem]:
    return [it for it in items if it.answer or it.label]


def synthetic_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    from ragsys.train.mining.synthetic import load_pairs, save_pairs, synthetic_pairs

    n = len(with_gold(ctx.train))
    if n >= ctx.settings.synthetic_below:
        return f"the train split has {n} questions with gold evidence (>= {ctx.settings.synthetic_below})"
    index = ctx.scorer.index(index_dir)
    pairs_file = out / "pairs.jsonl"
    if pairs_file.exists():
        ctx.synthetic = list(load_pairs(pairs_file, index))
        return Proposal(config, index_dir, None, {"kept": len(ctx.synthetic), "reused": True})
    search = ctx.scorer.search(config, index_dir, generate=False)
    result = synthetic_pairs(
        index, search, ctx.settings.synthetic, progress=lambda d, t: ctx.progress("synthetic queries", d, t)
    )
    out.mkdir(parents=True, exist_ok=True)
    save_pairs(pairs_file, result.pairs)
    ctx.synthetic = list(result.pairs)
    return Proposal(config, index_dir, None, result.model_dump(mode="json", exclude={"pairs"}))


def lm_scored(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
) -> list[Any]:
    """REPLUG-style targets: the generator judges each train question's top passages."""
    from ragsys.train.mining.lm import lm_score_passages

    answered = with_reference(items)[: ctx.settings.lm_questions]
    if config.generator is None or not answered or ctx.settings.lm_questions == 0:
        return []
    from ragsys.generate.hf import HFGenerator

    search = ctx.scorer.search(config, index_dir, generate=True)
    if not isinstance(search.generator, HFGenerator):
        return []
    hits = search.search_many([it.question for it in answered], ctx.settings.lm_k)
    return lm_score_passages(
        search.generator,
        answered,
        hits,
        ctx.settings.lm_k,
        on_progress=ctx.counter("LM supervision", len(answered)),
    )


def retriever_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, joint: bool = True
) -> Proposal | str:
    from ragsys.index.copy import copy_for_pipeline
    from ragsys.train.mining.hard_negatives import examples_for_pairs, labelled_examples
    from ragsys.train.retriever import train_retriever

    if not any(isinstance(r, DenseConfig) for r in config.retrievers):
        return "the pipeline has no dense retriever"
    index = ctx.scorer.index(index_dir)
    search = ctx.scorer.search(config, index_dir, generate=False)
    train = ctx.settings.retriever.model_copy(update={"seed": ctx.seed, "max_minutes": ctx.minutes_left()})
    gold = with_gold(ctx.train)
    examples = labelled_examples(
        gold,
        index,
        search,
        n_negatives=train.n_negatives,
        depth=train.depth,
        skip=train.skip,
        seed=ctx.seed,
        on_progress=ctx.counter("mining", len(gold)),
    )
    if joint and ctx.synthetic:
        examples += examples_for_pairs(
            ctx.synthetic, search, n_negatives=train.n_negatives, depth=train.depth
        )
    scored = lm_scored(ctx, config, index_dir, ctx.train) if joint else []
    if len(examples) < 2 and not scored:
        return "no training signal: no gold documents, synthetic queries or reference answers"
    result = train_retriever(
        config,
        train,
        examples,
        out=out / "train",
        lm_scored=scored,
        progress=lambda d, t: ctx.progress("training the encoder", d, t),
    )
    new_index = out / "index"
    copy_for_pipeline(index_dir, new_index, result.pipeline, ctx.index_reporter("re-embedding the corpus"))
    return Proposal(
        result.pipeline, new_index, RETRIEVAL, result.model_dump(mode="json", exclude={"pipeline"})
    )


def reranker_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, joint: bool = True
) -> Proposal | str:
    from ragsys.train.mining.hard_negatives import examples_for_pairs, labelled_examples
    from ragsys.train.mining.lm import lm_ranked_examples
    from ragsys.train.reranker import train_reranker

    index = ctx.scorer.index(index_dir)
    search = ctx.scorer.search(config.model_copy(update={"reranker": None}), index_dir, generate=False)
    train = ctx.settings.reranker.model_copy(update={"seed": ctx.seed, "max_minutes": ctx.minutes_left()})
    gold = with_gold(ctx.train)
    examples = labelled_examples(
        gold,
        index,
        search,
        n_negatives=train.n_negatives,
        depth=train.top_n,
        seed=ctx.seed,
        on_progress=ctx.counter("mining", len(gold)),
    )
    if ctx.settings.reranker_ict:  # free, label-less signal: the isolated control gets it too
        from ragsys.train.mining.ict import ict_pairs

        pairs = ict_pairs(index, ctx.settings.reranker_ict, ctx.seed)
        examples += examples_for_pairs(
            pairs, search, n_negatives=train.n_negatives, depth=train.top_n,
            on_progress=ctx.counter("mining for pseudo-queries", len(pairs)),
        )  # fmt: skip
    if joint:
        if ctx.synthetic:
            examples += examples_for_pairs(ctx.synthetic, search, n_negatives=train.n_negatives)
        examples += lm_ranked_examples(lm_scored(ctx, config, index_dir, ctx.train), train.n_negatives)
    if len(examples) < 2:
        return "no training signal for the reranker"
    result = train_reranker(
        config.model_copy(update={"reranker": None}),
        train,
        examples,
        out=out / "train",
        dev=with_gold(ctx.dev),
        search=search,
        progress=lambda d, t: ctx.progress("training the reranker", d, t),
        dev_progress=lambda d, t: ctx.progress("checking the reranker on dev", d, t),
        on_dev_scores=ctx.scorer.remember_pairs,  # judging the stage then reranks few pairs anew
    )
    extra = result.model_dump(mode="json", exclude={"pipeline"})
    if not result.used:
        without = result.dev.without if result.dev is not None else float("nan")
        return Proposal(
            config,
            index_dir,
            RETRIEVAL,
            extra,
            rejected=f"no interpolation weight beat the candidates as retrieved on dev (nDCG@10 "
            f"{without:.4f}); the reranker is not used",
        )
    return Proposal(result.pipeline, index_dir, RETRIEVAL, extra)


def mixture_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    from ragsys.fusion import LearnedMixtureConfig
    from ragsys.train.mixture import fit_learned_mixture

    if len(config.retrievers) < 2:
        return "one retriever: nothing to mix"
    gold = with_gold(ctx.train)
    if not gold:
        return "no train question has gold documents to fit fusion weights on"
    learned = config.model_copy(update={"fusion": LearnedMixtureConfig(seed=ctx.seed)})
    search = ctx.scorer.search(learned, index_dir, generate=False)
    index = ctx.scorer.index(index_dir)
    fitted, fit = fit_learned_mixture(learned, search, gold, set(index.manifest.documents))
    return Proposal(
        fitted,
        index_dir,
        RETRIEVAL,
        {"fitted": fit.config.model_dump(mode="json"), "fit_ndcg@10": fit.ndcg_at_10},
    )


def context_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    """How many retrieved passages the generator reads: each of `context_passages` answers the
    first `context_questions` train questions with a reference, and the best (label macro-F1 for
    yes/no/maybe sets, else the mean answer score; ties to fewer passages) is proposed. Chosen on
    train, so the keep rule's paired test on dev is not judging its own selection."""
    from ragsys.eval.answers import label_accuracy_and_macro_f1
    from ragsys.tune.decide import closed_set_gold

    if config.generator is None:
        return "the pipeline has no generator"
    questions = with_reference(ctx.train)[: ctx.settings.context_questions]
    if not questions:
        return "no train question has a reference answer or label"
    current = passages_for(config, ctx.settings.answer_k)
    choices = sorted(set(ctx.settings.context_passages) | {current})
    tried: dict[int, float] = {}
    for k in choices:
        candidate = _with_passages(config, k)
        scores, labels = ctx.scorer.measure(candidate, index_dir, questions, ANSWER)
        gold = closed_set_gold(questions, labels)
        if gold is not None:
            ids = sorted(gold)
            tried[k] = label_accuracy_and_macro_f1([labels[i] for i in ids], [gold[i] for i in ids])[1]
        else:
            tried[k] = sum(scores.values()) / max(len(scores), 1)
        ctx.log(f"context: {k} passages -> {tried[k]:.4f} on {len(questions)} train questions")
    best = max(choices, key=lambda k: (round(tried[k], 10), -k))
    extra = {"tried": {str(k): v for k, v in tried.items()}, "questions": len(questions), "chosen": best}
    if best == current:
        return f"{current} passages (the current setting) scored best on train: {extra['tried']}"
    return Proposal(_with_passages(config, best), index_dir, ANSWER, extra)


def _with_passages(config: PipelineConfig, k: int) -> PipelineConfig:
    assert config.generator is not None
    return config.model_copy(update={"generator": config.generator.model_copy(update={"passages": k})})


def generator_stage(
    ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path, *, contexts: str = "retrieved"
) -> Proposal | str:
    from ragsys.train.generator.trainer import train_generator

    if config.generator is None:
        return "the pipeline has no generator"
    answered = with_reference(ctx.train)
    if not answered:
        return "no train question has a reference answer or label"
    train = ctx.settings.generator.model_copy(
        update={
            "method": "sft",
            "seed": ctx.seed,
            "max_minutes": ctx.minutes_left(),
            "k": passages_for(config, ctx.settings.answer_k),
            "contexts": contexts,
        }
    )
    result = train_generator(
        ready_generator(config, out),
        train,
        index=ctx.scorer.index(index_dir),
        items=answered,
        out=out / "train",
        progress=ctx.train_progress,
    )
    return Proposal(result.pipeline, index_dir, ANSWER, result.model_dump(mode="json", exclude={"pipeline"}))


def preference_stage(ctx: TuneContext, config: PipelineConfig, index_dir: Path, out: Path) -> Proposal | str:
    from ragsys.feedback import FeedbackStore
    from ragsys.train.generator.trainer import train_generator

    if config.generator is None:
        return "the pipeline has no generator"
    if ctx.feedback is None:
        return "no --feedback store given"
    with FeedbackStore.open(ctx.feedback, readonly=True) as store:
        records = store.records()
    ups = sum(r.rating == "up" for r in records)
    downs = sum(r.rating == "down" for r in records)
    revisions = sum(bool(r.revision) for r in records)
    methods = (["kto"] if ups and downs else []) + (["clair"] if revisions else [])
    if not methods:
        return f"feedback has {ups} up, {downs} down, {revisions} revisions: KTO needs both, CLAIR revisions"
    current: PipelineConfig = config
    extra: dict[str, Any] = {"up": ups, "down": downs, "revisions": revisions}
    for method in methods:
        train = ctx.settings.generator.model_copy(
            update={
                "method": method,
                "seed": ctx.seed,
                "max_minutes": ctx.minutes_left(),
                "k": passages_for(config, ctx.settings.answer_k),
            }
        )
        result = train_generator(
            ready_generator(current, out / method),
            train,
            index=ctx.scorer.index(index_dir),
            feedback=ctx.feedback,
            out=out / method / "train",
            progress=ctx.train_progress,
        )
        current = result.pipeline
        extra[method] = result.model_dump(mode="json", exclude={"pipeline"})
    return Proposal(current, index_dir, ANSWER, extra)


def ready_generator(config: PipelineConfig, out: Path) -> PipelineConfig:
    """A generator that already carries an adapter is merged into full weights first, so the
    next adapter trains on top of it (one adapter per generator config)."""
    from ragsys.train.merge import stack_on_adapter

    return stack_on_adapter(config, out / "merged")


STAGES: dict[str, Stage] = {
    "synthetic": synthetic_stage,
    "retriever": retriever_stage,
    "reranker": reranker_stage,
    "mixture": mixture_stage,
    "context": context_stage,
    "generator": generator_stage,
    "preference": preference_stage,
}
