"""SFT contexts with the evidence put in: the retrieved passages, with the gold documents' chunks
that state the reference's figures placed among them (`contexts="evidence"`).

Why: SFT learns from what the pipeline retrieves, so training sees what inference sees. But on
the 10-Q train questions the retrieved passages rarely state the reference's figures: 30 of 94
targets were dropped because no passage stated any of their figures, and most of the rest keep
one figure sentence of several. The model is shown few examples of the one skill a figure
question needs -- find the figure in a passage, copy it with its unit, cite it. RAFT (Zhang et
al., 2024, "Adapt Language Model to Domain Specific RAG") trains on the oracle passage placed
among retrieved distractors for that reason. Here the oracle is found by value: the fewest
chunks of the item's gold documents that together state the most reference figures
(`evidence_chunks`, read as `numeric_match` reads figures; unlike `eval.evidence.answer_bearing`,
the chunks tied for the most figures, it covers figures across chunks, since a reference lists
quarters from several filings), put at seeded positions among the
first `k` retrieved hits (`with_evidence`). The distractors stay, so the model still learns to
pick; the targets are cut to what the passages state as before (`targets.sft_target`).

Only references that state figures get evidence; the others keep their retrieved passages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ragsys.eval.evalset import EvalItem, gold_doc_ids
from ragsys.eval.evidence import stated
from ragsys.eval.numbers import figures
from ragsys.generate.attribution import greedy_cover
from ragsys.index.reader import Index
from ragsys.types import Chunk, Hit

MAX_EVIDENCE = 2  # chunks put in per question: the rest of the prompt stays what retrieval found


def evidence_chunks(reference: str, chunks: Sequence[Chunk], limit: int = MAX_EVIDENCE) -> list[Chunk]:
    """At most `limit` of `chunks`, picked greedily (most reference figures not yet stated first,
    ties to the earlier chunk), that state the reference's figures; empty when the reference
    states none or no chunk states any of them."""
    wanted = figures(reference)
    if not wanted:
        return []
    picked, _ = greedy_cover([stated(wanted, c.text) for c in chunks], limit=limit)
    return [chunks[i] for i in picked]


def with_evidence(hits: Sequence[Hit], evidence: Sequence[Chunk], k: int, rng: random.Random) -> list[Hit]:
    """The first `k` hits with the evidence chunks among them: each at a random position, the
    retrieved hits keeping their order and the last of them dropped to make room. A chunk that
    was retrieved already stays where retrieval put it."""
    found = {h.chunk.id for h in hits[:k]}
    added = [Hit(chunk=c, score=0.0, source="evidence") for c in evidence if c.id not in found]
    if not added:
        return list(hits[:k])
    out = list(hits[: max(k - len(added), 0)])
    for hit in added[:k]:
        out.insert(rng.randint(0, len(out)), hit)
    return out


def evidence_contexts(
    items: Sequence[EvalItem], hits: Sequence[Sequence[Hit]], index: Index, k: int, seed: int
) -> tuple[list[list[Hit]], int]:
    """Each item's first `k` hits with its gold documents' evidence put in (`with_evidence`,
    seeded per item), and how many items got some."""
    doc_ids = index.store.doc_ids()
    known = set(doc_ids)
    out: list[list[Hit]] = []
    given = 0
    for item, item_hits in zip(items, hits, strict=True):
        chunks = [c for d in gold_doc_ids(item, doc_ids, known) for c in index.store.chunks_of(d)]
        evidence = evidence_chunks(item.answer or "", chunks)
        out.append(with_evidence(item_hits, evidence, k, random.Random(f"{seed}:{item.id}")))
        given += any(h.source == "evidence" for h in out[-1])
    return out, given
