"""Per-question scores of a candidate pipeline on a set of questions (dev while tuning, test
in the final report), with the loaded components and the expensive scores cached.

Three metrics: `ndcg@10` (retrieval, document level, as `ragsys eval` scores it);
`evidence` (retrieval judged by what the generator will read: where a question's reference
states figures, the share of them its first passages state -- `figure_recall` at the passages
the generator is given -- and `ndcg@10` where it states none; `retrieval_metric` picks it for
eval sets whose references mostly state figures, such as filings, where scoping already puts
every hit in a gold document and document nDCG cannot tell a better ranking of its chunks);
and `answer` (`answer_score`: label accuracy when the questions have closed-set labels such as
yes/no/maybe, otherwise `figure_f1` -- `numeric_match` with partial credit -- where the
reference states a figure and token F1 against the reference where it does not, 0 for an
uncited answer), which generates and is ~100x slower.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragsys.eval.evalset import EvalItem
from ragsys.eval.evidence import evidence_scores
from ragsys.eval.numbers import figures
from ragsys.eval.retrieval import score_retrieval, search_all
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig, weights_digest
from ragsys.progress import Progress, counter, no_progress
from ragsys.rerank import CrossEncoderReranker
from ragsys.train.parallel import World
from ragsys.tune.shared import on_main

Scores = dict[str, float]
RETRIEVAL = "ndcg@10"
EVIDENCE = "evidence"
ANSWER = "answer"


Pair = tuple[str, str]


class CachedPairScorer:
    """A cross-encoder whose scores are remembered per (query, passage): ablations rerank
    mostly the same candidates again, and each pair costs a transformer forward pass."""

    def __init__(self, model: Any, cache: dict[Pair, float] | None = None) -> None:
        self._model = model
        self._cache: dict[Pair, float] = {} if cache is None else cache

    def predict(self, inputs: list[Pair], **kwargs: Any) -> Any:
        todo = list(dict.fromkeys(p for p in inputs if p not in self._cache))
        if todo:
            raw = np.asarray(self._model.predict(todo, **kwargs), dtype=np.float64).reshape(len(todo), -1)
            self._cache.update({p: float(s) for p, s in zip(todo, raw[:, 0], strict=True)})
        return np.array([self._cache[p] for p in inputs], dtype=np.float64)


def answer_score(metrics: Mapping[str, float], closed: bool) -> float:
    """One answer's score for the keep rule: label accuracy on closed-set questions; otherwise
    `figure_f1` where the reference states a figure (the figures right, as a finance user
    checks, with partial credit: `numeric_match`, all of them or nothing, was 0 for 55 of 56
    10-Q test answers, too rare to tell two stages apart on 23 dev questions) and token F1
    against the reference where it does not -- and 0 for an answer that neither cites a passage
    nor abstains, since a reader cannot check it. Without that, the 10-Q loop's preference
    stage was kept on dev (+0.036) while its answers stopped citing (`no_citation_rate` 0.038
    -> 0.987 on test): the revisions it learned from cited nothing."""
    if closed and "label_accuracy" in metrics:
        return metrics["label_accuracy"]
    if metrics.get("no_citation_rate", 0.0) >= 1.0:
        return 0.0
    if "figure_f1" in metrics:
        return metrics["figure_f1"]
    if "numeric_match" in metrics:  # scores recorded before figure_f1 existed
        return metrics["numeric_match"]
    return metrics.get("token_f1", 0.0)


def retrieval_metric(items: Sequence[EvalItem]) -> str:
    """How the ranking stages are judged: `evidence` when at least half of the questions with
    gold documents have a reference that states a figure, else `ndcg@10`."""
    gold = [it for it in items if it.gold_doc_ids or it.gold_chunk_ids]
    numeric = sum(bool(it.answer and figures(it.answer)) for it in gold)
    return EVIDENCE if gold and 2 * numeric >= len(gold) else RETRIEVAL


def passages_for(config: PipelineConfig, default: int) -> int:
    """Passages the generator is given: the pipeline's own choice (the context stage's), else
    the tune run's `answer_k`."""
    chosen = config.generator.passages if config.generator is not None else None
    return chosen or default


class Scorer:
    """Builds candidates (index + pipeline) once each and scores them; caches by (dir, metric, set).

    Under `accelerate launch` (`world`), every process asks for the same scores and the main
    process alone computes them (`ragsys.tune.shared`)."""

    def __init__(
        self, answer_k: int, on_progress: Progress = no_progress, world: World | None = None
    ) -> None:
        self.answer_k, self.world = answer_k, world or World()
        self._indexes: dict[str, Index] = {}
        # Raw logits per cross-encoder, keyed by the digest of its weights: a stage's saved
        # pipeline bundles a copy of the model its trainer wrote, and both copies share scores.
        self._pair_scores: dict[str, dict[Pair, float]] = {}
        self._digests: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
        self._progress = on_progress
        # seconds spent and questions done, per metric: what the report will cost (tune.reserve)
        self._timed: dict[str, tuple[float, int]] = {}

    def seconds_per(self, metric: str) -> float | None:
        """Measured seconds per question for `metric` (an answer includes its search); None
        before any question was scored that way on this process."""
        spent, n = self._timed.get(metric, (0.0, 0))
        return spent / n if n else None

    def _time(self, metric: str, t0: float, n: int) -> None:
        spent, done = self._timed.get(metric, (0.0, 0))
        self._timed[metric] = (spent + time.monotonic() - t0, done + n)

    def index(self, path: Path) -> Index:
        key = str(path.resolve())
        if key not in self._indexes:
            self._indexes[key] = Index.open(path)
        return self._indexes[key]

    def search(self, config: PipelineConfig, index_dir: Path, generate: bool) -> Pipeline:
        """The candidate, built from its config; its cross-encoder sits behind the pair scores
        already known for its weights."""
        search = config.build(self.index(index_dir), generator=generate)
        reranker = search.reranker
        if not isinstance(reranker, CrossEncoderReranker):
            return search
        cached = self.pair_scorer(reranker.config.model, reranker.model)
        return replace(search, reranker=CrossEncoderReranker(reranker.config, cached))

    def pair_scorer(self, model: str, inner: Any) -> CachedPairScorer:
        """`inner` (the cross-encoder loaded from `model`) behind the scores already known for
        those weights, wherever they were copied."""
        return CachedPairScorer(inner, self._pair_scores.setdefault(self._digest(model), {}))

    def remember_pairs(self, model: str | Path, scores: Mapping[Pair, float]) -> None:
        """Raw logits the caller already computed with the cross-encoder at `model` (the
        reranker's dev check scores every dev candidate): judging the stage on dev then reranks
        only the pairs the check did not see, instead of every pair a second time."""
        self._pair_scores.setdefault(self._digest(str(model)), {}).update(scores)

    def _digest(self, model: str) -> str:
        path = Path(model)
        if not path.is_dir():
            return model
        files = sorted(p for p in path.rglob("*") if p.is_file())
        key = (str(path.resolve()), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
        if key not in self._digests:
            self._digests[key] = weights_digest(model)
        return self._digests[key]

    def score(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> Scores:
        if metric in (RETRIEVAL, EVIDENCE):
            return self.retrieval(config, index_dir, items, evidence=metric == EVIDENCE)
        if metric == ANSWER:
            return self.answers(config, index_dir, items)
        raise ValueError(f"unknown tuning metric {metric!r}")

    def measure(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], metric: str
    ) -> tuple[Scores, dict[str, str]]:
        """`score`, plus the label each answer chose when the questions are closed-set (the
        keep rule judges those on macro-F1); no labels for retrieval."""
        if metric == ANSWER:
            return self.answers_and_labels(config, index_dir, items)
        return self.score(config, index_dir, items, metric), {}

    def retrieval(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], evidence: bool = False
    ) -> Scores:
        return on_main(self.world, lambda: self._retrieval(config, index_dir, items, evidence))

    def _retrieval(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem], evidence: bool
    ) -> Scores:
        """nDCG@10 per question; with `evidence`, figure recall in the passages the generator
        reads wherever the reference states a figure."""
        scored = [it for it in items if it.gold_doc_ids]
        search = self.search(config, index_dir, generate=False)
        t0 = time.monotonic()
        hits = search_all(
            search,
            [it.question for it in scored],
            on_progress=counter(self._progress, "retrieval", len(scored)),
        )
        self._time(RETRIEVAL, t0, len(scored))
        _, per_query = score_retrieval(scored, hits)
        judged = [(it, h) for it, h in zip(scored, hits, strict=True) if it.id in per_query]
        ndcg = [per_query[it.id][RETRIEVAL] for it, _ in judged]
        if evidence:
            k = passages_for(config, self.answer_k)
            ndcg = evidence_scores([it for it, _ in judged], [h for _, h in judged], k, ndcg)
        return {it.id: v for (it, _), v in zip(judged, ndcg, strict=True)}

    def answers(self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]) -> Scores:
        return self.answers_and_labels(config, index_dir, items)[0]

    def answers_and_labels(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
    ) -> tuple[Scores, dict[str, str]]:
        """Per-question answer scores (`answer_score`), and the label each answer chose
        (closed-set questions only): macro-F1 is computed over labels, not averaged over questions."""
        per_query, labels = self.answer_metrics(config, index_dir, items)
        closed = all(it.label for it in items)
        return {q: answer_score(m, closed) for q, m in per_query.items()}, labels

    def answer_metrics(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
    ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
        """Every per-question answer metric `ragsys eval` reports (numeric_match, no_citation_rate,
        citation precision, token F1, label accuracy, ...), and the labels chosen."""
        return on_main(self.world, lambda: self._answer_metrics(config, index_dir, items))

    def _answer_metrics(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
    ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
        per_query, extra = self.answered(config, index_dir, items)
        labels = {q: str(a["label"]) for q, a in extra["answers"].items() if "label" in a}
        return per_query, labels

    def answered(
        self, config: PipelineConfig, index_dir: Path, items: Sequence[EvalItem]
    ) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
        """`items` answered by the candidate on this process, as a stage is judged: per-question
        metrics and the run record's extras (`generate_and_score`: the answers themselves)."""
        from ragsys.eval.answering import generate_and_score

        search = self.search(config, index_dir, generate=True)
        generator = search.require_generator()
        k = passages_for(config, self.answer_k)
        t0 = time.monotonic()
        hits = search.search_many([it.question for it in items], k)
        per_query, extra = generate_and_score(
            generator, items, hits, k, on_progress=counter(self._progress, "answers", len(items))
        )
        self._time(ANSWER, t0, len(items))
        return per_query, extra

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()
        self._indexes.clear()
