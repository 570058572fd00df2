"""The one place that splits questions: test is for reporting, train and dev for learning.

`split_train_dev` splits the non-test questions into train and dev, seeded and stratified by
label (`ragsys tune`, `ragsys train reranker`'s held-out check); `carve_dev` samples a learned
mixture's dev questions from its fit split; `refuse_test_split` stops a command from training
on test. The test split is never read here: `non_test_items` asks the reader for every split
except "test" by name, and the reader records what it was asked for (tests assert on it).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.types import Frozen

TEST_SPLIT = "test"


class TrainDev(Frozen):
    train: tuple[EvalItem, ...]
    dev: tuple[EvalItem, ...]


def non_test_items(reader: EvalSetReader) -> list[EvalItem]:
    splits = [s for s in reader.split_names() if s != TEST_SPLIT]
    if not splits:
        raise ValueError(f"{reader.path}: only a test split; tuning needs questions outside it")
    return reader.read(splits)


def split_train_dev(
    items: Sequence[EvalItem], dev_fraction: float, seed: int, max_dev: int | None = None
) -> TrainDev:
    """A seeded split; within each label (or all together when unlabelled) `dev_fraction` goes to dev.

    Order-independent: the same questions give the same split whatever order the file has.
    """
    groups: dict[str, list[EvalItem]] = defaultdict(list)
    for it in sorted(items, key=lambda i: i.id):
        groups[it.label or ""].append(it)
    rng = random.Random(seed)
    dev_ids: set[str] = set()
    want_total = round(len(items) * dev_fraction)
    if max_dev is not None:
        want_total = min(want_total, max_dev)
    share = want_total / len(items) if items else 0.0
    for label in sorted(groups):
        group = groups[label]
        rng.shuffle(group)
        dev_ids.update(it.id for it in group[: round(len(group) * share)])
    train = tuple(it for it in items if it.id not in dev_ids)
    dev = tuple(it for it in items if it.id in dev_ids)
    if not train or not dev:
        raise ValueError(f"{len(items)} questions cannot be split into train and dev; add questions")
    return TrainDev(train=train, dev=dev)


def carve_dev(ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded, order-independent sample of `fraction` of the ids (at least one)."""
    pool = sorted(ids)
    random.Random(seed).shuffle(pool)
    return sorted(pool[: max(1, round(len(pool) * fraction))])


def refuse_test_split(split: str) -> None:
    """Training on test would make every later test number meaningless."""
    if split == "test":
        raise ValueError(
            "training on the test split would make every later test number meaningless; use --split train"
        )
