"""Which feedback a run learns from: the tuned version's records only, each judgement once, each
question weighed once (ragsys.feedback.select), and the KTO loss applying those weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ragsys.feedback.records import FeedbackRecord, new_record
from ragsys.feedback.select import question_weights, resolve_version, select_feedback
from ragsys.feedback.store import FeedbackStore
from ragsys.train.generator.data import Example, Seq
from ragsys.train.generator.feedback import kto_weights
from ragsys.train.generator.steps import StepContext, kto_step
from ragsys.train.generator.trainer import consumed, read_feedback


def rec(question: str, rating: str = "up", version: str = "v1", answer_id: str | None = None,
        revision: str | None = None, answer: str = "a") -> FeedbackRecord:  # fmt: skip
    return new_record(question, answer, ("c1",), version, rating, revision, answer_id=answer_id)  # type: ignore[arg-type]


def test_only_the_chosen_versions_records_are_used_and_the_rest_counted() -> None:
    records = [
        rec("q1", version="v1"),
        rec("q2", version="v0"),
        rec("q3", "down", version="v1", revision="r"),
    ]
    picked = select_feedback(records, "v1")
    assert [r.question for r in picked.records] == ["q1", "q3"]
    assert picked.counts() == {"thumbs_up": 1, "thumbs_down": 1, "revisions": 1,
                               "skipped_other_versions": 1, "duplicates": 0,
                               "skipped_held_out": 0}  # fmt: skip
    assert len(select_feedback(records, "all").records) == 3
    assert resolve_version("current", "v1") == "v1" and resolve_version("all", "v1") == "all"


def test_repeated_judgements_of_one_answer_count_once_and_the_last_rating_wins() -> None:
    records = [
        rec("q1", "up", answer_id="A"),
        rec("q1", "up", answer_id="A"),  # a double click
        rec("q1", "down", answer_id="A", revision="fixed"),
        rec("q1", "down", answer_id="A"),  # changed mind
        rec("q1", "up", answer_id="B"),  # another answer to the same question: its own judgement
        rec("q2", "down"),
        rec("q2", "down"),  # imported twice, no answer id: identical records
    ]
    picked = select_feedback(records, "v1")
    by_answer = {r.answer_id: r for r in picked.records if r.answer_id}
    assert by_answer["A"].rating == "down" and by_answer["A"].revision == "fixed"  # revision kept
    assert by_answer["B"].rating == "up"
    assert sum(r.question == "q2" for r in picked.records) == 1
    assert picked.duplicates == 4 and len(picked.records) == 3


def test_a_question_judged_many_times_weighs_as_much_as_one_judged_once() -> None:
    weights = question_weights(["q1"] * 9 + ["Q1 "] + ["q2"], others=1)  # case and spacing aside
    assert sum(weights[:10]) == pytest.approx(weights[10]) == pytest.approx(weights[11])
    assert sum(weights) / len(weights) == pytest.approx(1.0)  # the loss keeps its scale
    assert question_weights(["How  much?", "how much?"], others=1) == [0.75, 0.75, 1.5]  # one question


def test_kto_weights_count_examples_by_their_weight() -> None:
    seq = Seq(ids=(1, 2, 3), n_prompt=1)
    many_ups = [Example(seqs=(seq, seq), desirable=True, weight=0.25) for _ in range(4)]
    down = [Example(seqs=(seq, seq), desirable=False, weight=1.0)]
    assert kto_weights(many_ups + down, None, None) == (1.0, 1.0)  # 4 x 0.25 up vs 1 down: balanced


class _Fixed(torch.nn.Module):
    """Log-probs that do not depend on the input: each sequence's loss term is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(5))
        self.device = torch.device("cpu")

    def forward(self, input_ids: torch.Tensor, logits_to_keep: int, **_: object) -> object:
        logits = self.bias.expand(input_ids.shape[0], logits_to_keep, 5)
        return type("Out", (), {"logits": logits})()


def test_a_zero_weight_example_adds_nothing_to_the_kto_loss() -> None:
    seq = Seq(ids=(1, 2, 3), n_prompt=1)
    up = Example(seqs=(seq, seq), ref=(0.0, 0.0), desirable=True, weight=1.0)
    ctx = StepContext(pad_id=0)
    alone = kto_step(_Fixed(), [up], ctx)
    ignored = Example(seqs=(seq, seq), ref=(5.0, 0.0), desirable=False, weight=0.0)
    both = kto_step(_Fixed(), [up, ignored], ctx)
    assert both.item() == pytest.approx(alone.item() / 2)  # the mean over 2, the second term zeroed


def test_training_reads_the_stores_records_of_one_version(tmp_path: Path) -> None:
    with FeedbackStore.open(tmp_path / "fb.db") as store:
        for r in [rec("q1", version="v1", revision=None), rec("q2", "down", version="v1", revision="r"),
                  rec("q3", version="v0")]:  # fmt: skip
            store.add(r)
    picked = read_feedback(tmp_path / "fb.db", "v1")
    assert [r.question for r in picked.records] == ["q1", "q2"] and picked.skipped_other_versions == 1
    assert consumed(picked, "kto") == {"thumbs_up": 1, "thumbs_down": 1, "revisions": 1,  # as up thumbs
                                       "skipped_other_versions": 1, "duplicates": 0,
                               "skipped_held_out": 0}  # fmt: skip
    assert consumed(picked, "clair")["revisions"] == 1 and consumed(picked, "clair")["thumbs_up"] == 0
    assert read_feedback(None, "v1").records == ()


def test_an_older_store_gains_the_answer_id_column_and_keeps_its_records(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    with FeedbackStore.open(db) as store:
        store.add(rec("q1"))
    conn = sqlite3.connect(db)  # make it an older db: no answer_id column
    conn.execute("ALTER TABLE feedback DROP COLUMN answer_id")
    conn.commit()
    conn.close()
    with FeedbackStore.open(db, readonly=True) as old:
        assert [r.answer_id for r in old.records()] == [None]  # read as NULL, not an error
    with FeedbackStore.open(db) as store:  # writable: migrated
        store.add(rec("q2", answer_id="A"))
        assert [(r.question, r.answer_id) for r in store.records()] == [("q1", None), ("q2", "A")]


def test_feedback_about_a_held_out_question_is_left_out_and_counted(tmp_path: Path) -> None:
    """`ragsys tune` judges a stage on dev (or a held-out fold): a thumb or revision about one of
    those questions must not reach training, or the keep rule would judge on seen questions."""
    from ragsys.feedback.select import question_key

    with FeedbackStore.open(tmp_path / "fb.db") as store:
        for q in ("What was revenue?", "What was  REVENUE? ", "What was net income?"):
            store.add(rec(q, "down", revision="$5"))
    picked = read_feedback(tmp_path / "fb.db", "v1", held_out=(question_key("what was revenue?"),))
    assert [r.question for r in picked.records] == ["What was net income?"]
    assert picked.counts()["skipped_held_out"] == 2 and picked.counts()["revisions"] == 1
    assert read_feedback(tmp_path / "fb.db", "v1").counts()["skipped_held_out"] == 0
