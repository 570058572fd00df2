"""Training examples for the rankers: a question, a positive chunk, and hard negatives.

Hard negatives come from the pipeline's own retrieval over the current index -- the
passages it ranks high for the question that are not gold -- because those are the
mistakes the tuned model must stop making. Two kinds of false negative are excluded:
chunks of a gold document, and near-duplicates of the positive (the same text indexed
twice, e.g. a filing quoted in another). Labels are incomplete in every real set (SciFact
marks a handful of abstracts per claim), so `skip` can also drop the very top ranks,
where unlabelled positives concentrate.

Where the gold is a whole document (filings: "*AAPL*") and the reference answer states
figures, the positives are the gold documents' chunks that state them
(`ragsys.eval.evidence.answer_bearing`) and the negatives may come from the gold documents
too, all but the chunks stating any reference figure: once scoping keeps retrieval inside the
right filings, the mistake to unlearn is the wrong chunk of the right filing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from ragsys.eval.evalset import EvalItem, gold_doc_ids
from ragsys.eval.evidence import answer_bearing, stated
from ragsys.eval.numbers import figures
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline
from ragsys.train.examples import TrainExample
from ragsys.types import Chunk, Hit

_WORD = re.compile(r"\w+")
ANSWER_POSITIVES = 2  # answer-bearing chunks kept as positives per question


def near_duplicate(a: str, b: str, threshold: float = 0.9) -> bool:
    """Token-set Jaccard similarity at or above `threshold`."""
    ta, tb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not ta or not tb:
        return a.strip() == b.strip()
    return len(ta & tb) / len(ta | tb) >= threshold


def pick_negatives(
    hits: Sequence[Hit],
    positive: Chunk,
    excluded_docs: set[str],
    n: int,
    skip: int,
    excluded_chunks: frozenset[str] = frozenset(),
) -> tuple[Chunk, ...]:
    """The first `n` retrieved chunks (after `skip` ranks) that are neither gold nor near-duplicates."""
    out: list[Chunk] = []
    for h in hits[skip:]:
        c = h.chunk
        if c.doc_id in excluded_docs or c.id == positive.id or c.id in excluded_chunks:
            continue
        if near_duplicate(c.text, positive.text):
            continue
        out.append(c)
        if len(out) == n:
            break
    return tuple(out)


def labelled_examples(
    items: Sequence[EvalItem],
    index: Index,
    search: Pipeline,
    *,
    n_negatives: int,
    depth: int = 50,
    skip: int = 0,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> list[TrainExample]:
    """One example per (question, gold document or gold chunk); see the module docstring."""
    doc_ids = index.store.doc_ids()
    known = set(doc_ids)
    runs = search.search_many([it.question for it in items], depth, on_progress=on_progress)
    examples: list[TrainExample] = []
    for item, hits in zip(items, runs, strict=True):
        golds = gold_doc_ids(item, doc_ids, known)
        chunk_rows = index.store.rows_of_chunk_ids(item.gold_chunk_ids)
        positives = index.chunks(sorted(chunk_rows.values())) if chunk_rows else []
        if not positives:  # document-level gold: the chunks stating the reference's figures
            bearing = answer_examples(item, golds, hits, index, n_negatives=n_negatives, skip=skip)
            if bearing:
                examples += bearing
                continue
        excluded = set(golds) | {c.doc_id for c in positives}
        for doc in golds:
            if any(c.doc_id == doc for c in positives):
                continue
            best = next((h.chunk for h in hits if h.chunk.doc_id == doc), None)
            if best is None:
                chunks = index.store.chunks_of(doc)
                best = chunks[0] if chunks else None
            if best is not None:
                positives.append(best)
        for pos in positives:
            negs = pick_negatives(hits, pos, excluded, n_negatives, skip)
            examples.append(TrainExample(query=item.question, positive=pos, negatives=negs, query_id=item.id))
    random.Random(seed).shuffle(examples)
    return examples


def answer_examples(
    item: EvalItem, golds: Sequence[str], hits: Sequence[Hit], index: Index, *, n_negatives: int, skip: int
) -> list[TrainExample]:
    """Examples whose positives state the reference's figures (see the module docstring); empty
    when the reference states none or no gold document's chunk states one."""
    wanted = figures(item.answer or "")
    if not wanted or not golds:
        return []
    gold = set(golds)
    retrieved = [h.chunk for h in hits if h.chunk.doc_id in gold]
    seen = {c.id for c in retrieved}
    rest = [c for doc in golds for c in index.store.chunks_of(doc) if c.id not in seen]
    positives = answer_bearing(item.answer or "", [*retrieved, *rest], limit=ANSWER_POSITIVES)
    if not positives:
        return []
    bearing = frozenset(h.chunk.id for h in hits if stated(wanted, h.chunk.text))
    return [
        TrainExample(
            query=item.question,
            query_id=item.id,
            positive=pos,
            negatives=pick_negatives(hits, pos, set(), n_negatives, skip, excluded_chunks=bearing),
        )  # fmt: skip
        for pos in positives
    ]


def examples_for_pairs(
    pairs: Sequence[tuple[str, Chunk]],
    search: Pipeline,
    *,
    n_negatives: int,
    depth: int = 50,
    skip: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> list[TrainExample]:
    """Examples for (question, positive chunk) pairs without labels, e.g. synthetic queries."""
    runs = search.search_many([q for q, _ in pairs], depth, on_progress=on_progress)
    return [
        TrainExample(
            query=q, positive=pos, negatives=pick_negatives(hits, pos, {pos.doc_id}, n_negatives, skip)
        )
        for (q, pos), hits in zip(pairs, runs, strict=True)
    ]
