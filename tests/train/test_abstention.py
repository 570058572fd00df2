"""Grounded refusal: twins without their gold documents, the calibrated threshold, and the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.eval.convert import UNANSWERABLE_SUFFIX, with_unanswerable
from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.abstention import AbstentionTrainConfig, Scored, choose_threshold, rates, train_abstention
from tests.fixtures.generators import HITS, QUESTION, generator_config


def _scored(answerable: list[float], unanswerable: list[float]) -> list[Scored]:
    return [Scored(id=f"a{i}", score=s, unanswerable=False) for i, s in enumerate(answerable)] + [
        Scored(id=f"u{i}", score=s, unanswerable=True) for i, s in enumerate(unanswerable)
    ]


def test_the_threshold_abstains_most_on_unanswerable_within_the_answerable_budget() -> None:
    scored = _scored([-5.0, -4.0, -3.0, -2.0, -1.0, -6.0, -7.0, -8.0, -9.0, -10.0], [-0.5, -1.5, -2.5, -9.5])
    threshold = choose_threshold(scored, max_answerable=0.1)  # one of ten answerable may be refused
    unanswerable, answerable = rates(scored, threshold)
    assert answerable == 0.1 and unanswerable == 0.5  # -0.5 and -1.5 refused; -2.5 would cost a second
    assert rates(scored, choose_threshold(scored, 0.0))[1] == 0.0


def test_twins_exclude_their_gold_documents() -> None:
    items = [
        EvalItem(id="q1", question="q?", split="train", answer="a", gold_doc_ids=("a.pdf",)),
        EvalItem(id="q2", question="r?", split="train", answer="b"),  # no gold: no twin
    ]
    out = with_unanswerable(items)
    assert [it.id for it in out] == ["q1", "q1" + UNANSWERABLE_SUFFIX, "q2"]
    twin = out[1]
    assert (
        not twin.answerable
        and twin.exclude_doc_ids == ("a.pdf",)
        and twin.gold_doc_ids == ()
        and twin.answer is None
    )


@pytest.mark.parametrize("backend", ["transformers", "llama-cpp"])
def test_the_gate_refuses_without_generating_above_the_threshold(tiny_lm_path: Path, backend: str) -> None:
    if backend == "llama-cpp":
        pytest.importorskip("llama_cpp")
    refuse = generator_config(model=str(tiny_lm_path), backend=backend, abstain_threshold=-1e9).build()
    answer = refuse.generate(QUESTION, HITS)
    assert answer.abstained and answer.text == "I do not know." and answer.timings["new_tokens"] == 0
    assert answer.timings["abstain_score"] < 0  # a mean log-probability
    answer = (
        generator_config(model=str(tiny_lm_path), backend=backend, abstain_threshold=1e9)
        .build()
        .generate(QUESTION, HITS)
    )
    assert answer.timings["new_tokens"] > 0 and "abstain_score" not in answer.timings


def test_calibration_on_a_tiny_index_saves_the_threshold(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path: Path
) -> None:
    from ragsys.generate.config import GeneratorConfig

    root, items = built
    config = tiny_pipeline.model_copy(
        update={
            "generator": GeneratorConfig(
                model=str(tiny_lm_path), context_tokens=64, system_prompt="Be brief."
            )
        }
    )
    answered = [it.model_copy(update={"answer": "twelve"}) for it in items]
    result = train_abstention(
        config,
        AbstentionTrainConfig(dev_fraction=0.0),
        answered,
        index=Index.open(root / "index"),
        out=tmp_path / "out",
    )
    assert result.questions == 2 * len(answered)
    saved = PipelineConfig.load(tmp_path / "out")
    assert saved.generator is not None and saved.generator.abstain_threshold == pytest.approx(
        result.threshold
    )
    assert result.train_answerable_abstained <= 0.1 + 1e-9


def test_an_unanswerable_twin_searches_without_its_gold_documents(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig
) -> None:
    from ragsys.docids import doc_matches
    from ragsys.eval.retrieval import search_items

    root, items = built
    pipeline = tiny_pipeline.build(Index.open(root / "index"))
    both = with_unanswerable(items[:2])
    hits = search_items(pipeline, both, depth=5)
    assert any(doc_matches(g, h.chunk.doc_id) for g in both[0].gold_doc_ids for h in hits[0])
    assert hits[1] and not any(
        doc_matches(g, h.chunk.doc_id) for g in both[1].exclude_doc_ids for h in hits[1]
    )
