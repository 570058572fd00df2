"""Cross-fitting: every non-test question judged by a stage that never trained on it.

A single dev split judges a stage on a fifth of the questions, so a real gain often cannot
show (the SciFact retriever stage was reverted at +0.006, p = 0.55, on 162 dev questions
while the same training gave +0.016 on test). Cross-fitting spends more training to judge on
all of them: the non-test questions are cut into `k` folds; for each fold the stage trains on
the other k - 1 (carving its own inner dev split from them for the checks it makes while
training) and the held-out fold is scored with what it produced. The paired test then runs
over every non-test question, and a kept stage is trained once more on all of them.

Pure: fold assignment and the per-fold train/dev/held-out sets; `ragsys.tune.run` drives it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from ragsys.eval.evalset import EvalItem
from ragsys.eval.split import split_train_dev
from ragsys.types import Frozen


class Fold(Frozen):
    """One fold's questions: the stage trains on `train` (checks itself on `dev`), is judged on `held_out`."""

    number: int
    train: tuple[EvalItem, ...]
    dev: tuple[EvalItem, ...]
    held_out: tuple[EvalItem, ...]


def fold_ids(items: Sequence[EvalItem], k: int, seed: int) -> tuple[tuple[str, ...], ...]:
    """`k` disjoint folds covering every question, seeded, stratified by label, order-independent.

    Within each label the questions are shuffled and dealt round-robin, continuing where the
    previous label stopped, so fold sizes differ by at most one.

        >>> from ragsys.eval.evalset import EvalItem
        >>> qs = [EvalItem(id=f"q{i}", question="?", split="train") for i in range(7)]
        >>> [len(f) for f in fold_ids(qs, 3, seed=0)]
        [3, 2, 2]
    """
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    if len(items) < k:
        raise ValueError(f"{len(items)} questions cannot fill {k} folds; use fewer folds or add questions")
    groups: dict[str, list[str]] = defaultdict(list)
    for it in sorted(items, key=lambda i: i.id):
        groups[it.label or ""].append(it.id)
    rng = random.Random(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    turn = 0
    for label in sorted(groups):
        ids = groups[label]
        rng.shuffle(ids)
        for qid in ids:
            folds[turn % k].append(qid)
            turn += 1
    return tuple(tuple(sorted(f)) for f in folds)


def folds_of(
    items: Sequence[EvalItem],
    assignment: Sequence[Sequence[str]],
    dev_fraction: float,
    seed: int,
    max_dev: int | None = None,
) -> list[Fold]:
    """The `Fold`s of an assignment: held-out = the fold; the rest split into train and inner dev."""
    by_id = {it.id: it for it in items}
    out: list[Fold] = []
    for number, ids in enumerate(assignment, start=1):
        held = set(ids)
        rest = [it for it in items if it.id not in held]
        inner = split_train_dev(rest, dev_fraction, seed + number, max_dev)
        out.append(
            Fold(number=number, train=inner.train, dev=inner.dev, held_out=tuple(by_id[i] for i in ids))
        )
    return out
