"""The labels stage: the label step's offsets fitted on closed-set train answers, no weights
trained; its ablation restores the offsets alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.generate.config import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.train.budget import TimeBudget
from ragsys.tune import answer_stages
from ragsys.tune.context import Proposal, TuneContext
from ragsys.tune.report import without_stage
from ragsys.tune.settings import TuneSettings
from ragsys.tune.state import StageRecord, TuneState
from tests.fixtures.tune import FakeScorer, tune_items

BIAS = (("yes", -0.5), ("no", 0.0), ("maybe", 0.8))


class IndexlessScorer(FakeScorer):
    def __init__(self, per_answer: float | None = None) -> None:
        super().__init__()
        self.per_answer = per_answer

    def index(self, path: Path) -> None:
        return None

    def seconds_per(self, metric: str) -> float | None:
        return self.per_answer


def _ctx(
    train: list[EvalItem], questions: int = 200, per_answer: float | None = None, minutes: float | None = None
) -> TuneContext:
    dev = [EvalItem(id=f"d{i}", question=f"d{i}", split="train", label="yes") for i in range(10)]
    return TuneContext(
        settings=TuneSettings(label_questions=questions), seed=0, train=train, dev=dev, feedback=None,
        scorer=IndexlessScorer(per_answer), budget=TimeBudget(minutes, clock=lambda: 0.0),  # type: ignore[arg-type]
        progress=lambda *a: None, log=lambda m: None,
    )  # fmt: skip


def test_the_labels_stage_fits_offsets_on_closed_set_train_questions(
    tmp_path: Path, tiny_pipeline: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = [it for it in tune_items() if it.split == "train"]
    free = [EvalItem(id=f"f{i}", question=f"f{i}", split="train", answer="a sentence") for i in range(5)]
    config = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m", passages=2)})
    given: dict[str, object] = {}

    def fake_labels(
        cfg: PipelineConfig, settings: object, items: list[EvalItem], *, out: Path, **kw: object
    ) -> object:
        given["items"], given["settings"] = [it.id for it in items], settings
        assert cfg.generator is not None
        cfg.model_copy(update={"generator": cfg.generator.model_copy(update={"label_bias": BIAS})}).save(out)

        class Done:
            def model_dump(self, **kwargs: object) -> dict[str, object]:
                return {"bias": [list(b) for b in BIAS]}

        return Done()

    monkeypatch.setattr(answer_stages, "train_labels", fake_labels)
    proposal = answer_stages.labels_stage(_ctx([*train, *free], questions=40), config, Path("idx"), tmp_path)
    assert isinstance(proposal, Proposal) and proposal.metric == "answer"
    assert given["items"] == [it.id for it in train]  # closed-set train questions only
    settings = given["settings"]
    assert settings.limit == 40 and settings.k == 2 and settings.dev_fraction == 0.0  # type: ignore[attr-defined]
    assert proposal.config.generator is not None and proposal.config.generator.label_bias == BIAS
    assert proposal.extra["bias"][2] == ["maybe", 0.8]
    # 2 minutes at 3 s per answer, 2 x 10 dev answers to judge: 20 train answers fit
    answer_stages.labels_stage(_ctx(train, 40, per_answer=3.0, minutes=2.0), config, Path("idx"), tmp_path)
    assert given["settings"].limit == 20  # type: ignore[attr-defined]
    short = _ctx(train, 40, per_answer=3.0, minutes=1.0)
    assert "too few" in str(answer_stages.labels_stage(short, config, Path("idx"), tmp_path))
    # no closed-set train question, no generator: the stage says why and trains nothing
    assert "nothing to fit" in str(answer_stages.labels_stage(_ctx(free), config, Path("idx"), tmp_path))
    assert "no generator" in str(
        answer_stages.labels_stage(_ctx(train), tiny_pipeline, Path("idx"), tmp_path)
    )


def test_removing_the_labels_stage_restores_only_the_offsets(
    tmp_path: Path, tiny_pipeline: PipelineConfig
) -> None:
    base = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="m")})
    base.save(tmp_path / "base")
    calibrated = base.model_copy(update={"generator": GeneratorConfig(model="m", label_bias=BIAS)})
    calibrated.save(tmp_path / "labels")
    final = calibrated.model_copy(
        update={"generator": GeneratorConfig(model="m", label_bias=BIAS, passages=5)}
    )
    final.save(tmp_path / "context")
    rec = StageRecord(name="labels", status="kept", reason="", metric="answer",
                      pipeline_dir=str(tmp_path / "labels"), index_dir="idx")  # fmt: skip
    later = StageRecord(name="context", status="kept", reason="", metric="answer",
                        pipeline_dir=str(tmp_path / "context"), index_dir="idx")  # fmt: skip
    state = TuneState(
        seed=0, eval_set="e", train_ids=(), dev_ids=(), stages=(rec, later),
        base_pipeline=str(tmp_path / "base"), base_index="idx",
        current_pipeline=str(tmp_path / "context"), current_index="idx",
    )  # fmt: skip
    system = without_stage(state, rec)
    assert system.config.generator is not None
    assert system.config.generator.label_bias == () and system.config.generator.passages == 5
