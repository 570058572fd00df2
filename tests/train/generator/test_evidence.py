"""RAFT-style SFT contexts: the gold chunks stating the reference's figures put among the retrieved."""

from __future__ import annotations

import random
from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.pipeline import PipelineConfig
from ragsys.train.generator.evidence import evidence_chunks, evidence_contexts, with_evidence
from ragsys.types import Chunk, Hit
from tests.fixtures.factories import make_chunk, make_hit


def _chunk(i: int, text: str) -> Chunk:
    return make_chunk(f"c{i}", text, doc_id="d")


TABLE = _chunk(0, "|Net sales|82,959|81,797|")
PROSE = _chunk(1, "Net sales were $82,959 million; services were $19,604 million.")
OTHER = _chunk(2, "Services grew on advertising.")
REFERENCE = "Net sales were $82,959 million, then $81,797 million; services $19,604 million."


def test_the_fewest_chunks_stating_the_most_figures_are_the_evidence() -> None:
    assert [c.id for c in evidence_chunks(REFERENCE, [OTHER, PROSE, TABLE])] == ["c1", "c0"]
    assert [c.id for c in evidence_chunks(REFERENCE, [OTHER, PROSE, TABLE], limit=1)] == ["c1"]  # 2 of 3
    assert evidence_chunks("Services grew.", [PROSE, TABLE]) == []  # no figure in the reference
    assert evidence_chunks(REFERENCE, [OTHER]) == []  # no chunk states one


def test_evidence_goes_among_the_first_k_hits_in_their_order() -> None:
    hits = [make_hit(f"r{i}", f"retrieved {i}") for i in range(5)]
    out = with_evidence(hits, [TABLE], 3, random.Random(0))
    assert len(out) == 3 and [h.chunk.id for h in out if h.source == "evidence"] == ["c0"]
    assert [h.chunk.id for h in out if h.source != "evidence"] == ["r0", "r1"]  # the last one made room
    positions = {[h.source for h in with_evidence(hits, [TABLE], 3, random.Random(s))].index("evidence")
                 for s in range(20)}  # fmt: skip
    assert positions == {0, 1, 2}
    retrieved = [Hit(chunk=TABLE, score=1.0, source="dense"), *hits]
    assert with_evidence(retrieved, [TABLE], 3, random.Random(0)) == retrieved[:3]  # found already


def test_evidence_contexts_read_the_gold_documents(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    from ragsys.index.build import index_paths
    from ragsys.index.reader import Index
    from tests.fixtures.corpus import write_corpus

    corpus = write_corpus(tmp_path / "docs", {
        "sales.md": "Net sales were 5,210 in the quarter.\n",
        "costs.md": "Costs were 3,120, and the weather was mild all spring long.\n",
    })  # fmt: skip
    index_paths([corpus], tmp_path / "index", tiny_pipeline.index_spec(), workers=1)
    index = Index.open(tmp_path / "index")
    sales, costs = (str((corpus / n).resolve()) for n in ("sales.md", "costs.md"))
    items = [
        EvalItem(id="a", question="Sales?", split="train", answer="$5,210 million.", gold_doc_ids=(sales,)),
        EvalItem(id="b", question="Why?", split="train", answer="Mild weather.", gold_doc_ids=(costs,)),
    ]
    retrieved = [Hit(chunk=c, score=1.0, source="bm25") for c in index.store.chunks_of(costs)]
    hits, given = evidence_contexts(items, [retrieved, retrieved], index, k=2, seed=0)
    assert given == 1 and [h.chunk.doc_id for h in hits[0] if h.source == "evidence"] == [sales]
    assert hits[1] == retrieved[:2]  # a reference without figures keeps what retrieval found
