"""Inverse-cloze pseudo-queries."""

from __future__ import annotations

import random
from pathlib import Path

from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig
from ragsys.train.mining.ict import ict_pair, ict_pairs, sentences
from tests.fixtures.corpus import write_corpus
from tests.fixtures.factories import make_chunk

TEXT = (
    "Harmonic drives need grease every four thousand hours. The picking arm lifts twelve kilograms "
    "in the field. Strawberries bruise easily when the gripper closes too fast. Growers postponed fleets."
)


def test_sentences_split_on_sentence_ends() -> None:
    assert len(sentences(TEXT)) == 4
    assert sentences("One. two") == ["One. two"]  # a lowercase start is no new sentence


def test_ict_pair_removes_the_query_sentence_usually() -> None:
    chunk = make_chunk("c1", TEXT, doc_id="d")
    removed = kept = 0
    for seed in range(200):
        pair = ict_pair(chunk, random.Random(seed))
        assert pair is not None
        query, positive = pair
        assert query in sentences(TEXT) and positive.id == "c1" and positive.doc_id == "d"
        if query in positive.text:
            kept += 1
        else:
            removed += 1
    assert removed > kept > 0  # about 10% keep the sentence
    assert ict_pair(make_chunk("c2", "Too short. Two sentences."), random.Random(0)) is None


def test_ict_pairs_from_an_index(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    docs = {f"d{i}.txt": TEXT.replace("four", str(i)) for i in range(5)}
    long_chunks = tiny_pipeline.chunking.model_copy(update={"max_tokens": 200, "overlap_tokens": 0})
    config = tiny_pipeline.model_copy(update={"chunking": long_chunks})
    index_paths([write_corpus(tmp_path / "docs", docs)], tmp_path / "index", config.index_spec(), workers=1)
    pairs = ict_pairs(Index.open(tmp_path / "index"), n=3, seed=1, min_words=10)
    assert 1 <= len(pairs) <= 3
    assert pairs == ict_pairs(Index.open(tmp_path / "index"), n=3, seed=1, min_words=10)  # seeded
