"""Hard negatives: near duplicates and gold documents are never negatives."""

from __future__ import annotations

from pathlib import Path

from ragsys.eval.evalset import EvalItem
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.mining.hard_negatives import labelled_examples, near_duplicate, pick_negatives
from tests.fixtures.factories import make_chunk, make_hit


def test_near_duplicate() -> None:
    assert near_duplicate("The arm lifts twelve kilograms.", "the arm lifts twelve kilograms")
    assert not near_duplicate("The arm lifts twelve kilograms.", "Revenue rose eighteen percent.")


def test_pick_negatives_skips_gold_docs_positive_and_near_duplicates() -> None:
    pos = make_chunk("p", "arm lifts twelve kilograms", doc_id="gold")
    hits = [
        make_hit("p", "arm lifts twelve kilograms", doc_id="gold"),
        make_hit("g2", "another gold passage", doc_id="gold"),
        make_hit("dup", "arm lifts twelve kilograms", doc_id="copy"),
        make_hit("n1", "revenue rose", doc_id="other"),
        make_hit("n2", "margin improved", doc_id="other2"),
    ]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 5, 0)] == ["n1", "n2"]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 1, 0)] == ["n1"]
    assert [c.id for c in pick_negatives(hits, pos, {"gold"}, 5, 4)] == ["n2"]


def test_labelled_examples_positives_are_gold_and_negatives_are_not(
    built: tuple[Path, list[EvalItem]], tiny_pipeline: PipelineConfig
) -> None:
    root, items = built
    index = Index.open(root / "index")
    examples = labelled_examples(items, index, tiny_pipeline.build(index), n_negatives=2, depth=20)
    assert len(examples) == len(items)
    by_q = {it.question: it for it in items}
    for ex in examples:
        gold = by_q[ex.query].gold_doc_ids[0]
        assert ex.positive.doc_id == gold
        assert ex.negatives and all(n.doc_id != gold for n in ex.negatives)
