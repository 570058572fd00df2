"""The dev split of the train questions: seeded, stratified by label, order independent."""

from __future__ import annotations

from ragsys.eval.split import split_train_dev
from tests.fixtures.tune import tune_items


def test_split_is_seeded_stratified_and_order_independent() -> None:
    items = [it for it in tune_items() if it.split == "train"]
    a = split_train_dev(items, 0.2, seed=1)
    b = split_train_dev(list(reversed(items)), 0.2, seed=1)
    assert {it.id for it in a.dev} == {it.id for it in b.dev}
    assert len(a.dev) == 12 and len(a.train) == 48
    assert sorted(it.label or "" for it in a.dev).count("yes") == 6  # half of dev, as in the whole set
    assert {it.id for it in split_train_dev(items, 0.2, seed=2).dev} != {it.id for it in a.dev}
    assert not {it.id for it in a.dev} & {it.id for it in a.train}
