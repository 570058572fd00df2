"""The label step's calibration: offsets fitted on a skewed toy set, held-out dev, a tiny end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.labels import LabelTrainConfig, _finish, fit_label_bias, macro_f1, predict, train_labels

OPTIONS = ["yes", "no", "maybe"]


def _skewed(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Gold 55% yes / 34% no / 11% maybe; the model's scores carry the truth plus a strong
    prior for "no" (+2 nats), as untuned SmolLM2's did: uncalibrated, it answers "no" to nearly all."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(3, size=n, p=[0.55, 0.34, 0.11])
    scores = rng.normal(0.0, 1.0, size=(n, 3))
    scores[np.arange(n), gold] += 1.5  # the signal
    scores[:, 1] += 2.0  # the prior
    return scores, [OPTIONS[g] for g in gold]


def test_offsets_fitted_on_a_skewed_set_undo_the_prior_and_hold_on_new_questions() -> None:
    scores, gold = _skewed(300, seed=0)
    g = np.array([OPTIONS.index(x) for x in gold])
    before = macro_f1(predict(scores, np.zeros(3)), g, 3)
    bias = fit_label_bias(scores, gold, OPTIONS)
    vector = np.array([b for _, b in bias])
    assert [o for o, _ in bias] == OPTIONS and bias[0][1] == 0.0
    assert vector[1] < -1.0  # the "no" prior is taken back
    after = macro_f1(predict(scores, vector), g, 3)
    assert after > before + 0.2
    # on fresh questions from the same model the offsets still help, and no label collapses
    fresh, fresh_gold = _skewed(300, seed=1)
    fg = np.array([OPTIONS.index(x) for x in fresh_gold])
    chosen = predict(fresh, vector)
    assert macro_f1(chosen, fg, 3) > macro_f1(predict(fresh, np.zeros(3)), fg, 3) + 0.15
    assert all(np.mean(chosen == c) < 0.8 for c in range(3))


def test_offsets_never_lower_macro_f1_and_stay_zero_when_nothing_helps() -> None:
    scores = np.array([[0.0, -1.0, -2.0], [-1.0, 0.0, -2.0], [-2.0, -1.0, 0.0]])
    assert fit_label_bias(scores, OPTIONS, OPTIONS) == (("yes", 0.0), ("no", 0.0), ("maybe", 0.0))
    with pytest.raises(ValueError, match="one row of 3 scores"):
        fit_label_bias(scores[:2], OPTIONS, OPTIONS)


def test_the_dev_fraction_is_held_out_of_the_fit_and_the_pipeline_saved(
    tiny_pipeline: PipelineConfig, tmp_path: Path
) -> None:
    from ragsys.generate.config import GeneratorConfig

    scores, gold = _skewed(200, seed=2)
    config = tiny_pipeline.model_copy(update={"generator": GeneratorConfig(model="unused")})
    ids = [f"q{i:03d}" for i in range(200)]
    result = _finish(
        config, LabelTrainConfig(dev_fraction=0.25), OPTIONS, ids, scores.tolist(), gold, tmp_path
    )
    assert result.dev_questions == 50 and sum(result.dev_counts_after.values()) == 50
    assert result.dev_macro_f1_after is not None and result.dev_macro_f1_before is not None
    assert result.dev_macro_f1_after > result.dev_macro_f1_before
    assert result.dev_counts_before["no"] > result.dev_counts_after["no"]  # the prior, taken back
    saved = PipelineConfig.load(tmp_path)
    assert saved.generator is not None and saved.generator.label_bias == result.bias
    assert saved.name.endswith("-labels")
    # the offsets come from the fit part alone: fitting there again gives the same ones
    order = sorted(range(200), key=lambda i: ids[i])
    import random

    random.Random(0).shuffle(order)
    fit = sorted(order[50:])
    assert fit_label_bias(scores[fit], [gold[i] for i in fit], OPTIONS) == result.bias


def test_train_labels_answers_train_questions_on_a_tiny_index(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig, tiny_lm_path: Path, tmp_path: Path
) -> None:
    from tests.fixtures.generators import generator_config

    root, items = built
    generator = generator_config(model=str(tiny_lm_path), context_tokens=64, max_new_tokens=4)
    config = tiny_pipeline.model_copy(update={"generator": generator})
    labelled = [it.model_copy(update={"label": OPTIONS[i % 3]}) for i, it in enumerate(items)]
    seen: list[tuple[int, int]] = []
    result = train_labels(
        config, LabelTrainConfig(dev_fraction=0.0), labelled, index=Index.open(root / "index"),
        out=tmp_path / "out", progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert result.questions == len(labelled) and seen[-1] == (len(labelled), len(labelled))
    assert result.fit_macro_f1_after >= result.fit_macro_f1_before
    saved = PipelineConfig.load(tmp_path / "out")
    assert saved.generator is not None and saved.generator.label_bias == result.bias
    with pytest.raises(ValueError, match="nothing to fit on"):
        train_labels(config, LabelTrainConfig(), items, index=Index.open(root / "index"), out=tmp_path / "x")
