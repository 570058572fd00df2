"""Synthetic questions: cleaning rules, the round-trip filter, the JSONL cache, and generation
with a tiny random LM (whose output is gibberish: tests check plumbing, never quality)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.models import load_causal_lm
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.train.mining.synthetic import (
    SyntheticConfig,
    clean_question,
    generate,
    load_pairs,
    prompt_ids,
    round_trip_filter,
    sample_chunks,
    save_pairs,
    synthetic_pairs,
    write_questions,
)
from ragsys.types import Chunk, Hit
from tests.fixtures.corpus import write_corpus
from tests.fixtures.factories import make_chunk, make_hit


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Index:
    root = tmp_path_factory.mktemp("synthetic")
    index_paths([write_corpus(root / "docs")], root / "index", tiny_pipeline.index_spec(), workers=1)
    return Index.open(root / "index")


# --- cleaning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("What does aspirin prevent?", "What does aspirin prevent?"),
        ("Question: What does aspirin prevent?", "What does aspirin prevent?"),
        ('Q1: "What does aspirin prevent?"', "What does aspirin prevent?"),
        ("1. What does aspirin   prevent? It prevents strokes.", "What does aspirin prevent?"),
        ("**What does aspirin prevent?**", "What does aspirin prevent?"),
        ("Sure! Here is a question:\n\n- What does aspirin prevent?\nAnother?", "What does aspirin prevent?"),
        ('The question would be: "What does aspirin prevent?"', "What does aspirin prevent?"),
        ("What's the answer to this question: What does aspirin prevent?", "What does aspirin prevent?"),
        (" What does aspirin prevent?\n\nAnswer: strokes.", "What does aspirin prevent?"),  # after the prefix
        ("Aspirin prevents heart attacks.", None),  # no question at all
        ("Can you give a better answer to the question?", None),
        ("Why?", None),  # too short
        ("What " + "very " * 60 + "long?", None),  # too long
        ("What does the passage say about aspirin?", None),  # meaningless without the passage
        ("According to this text, what grew?", None),
        ("??? what", None),
    ],
)
def test_clean_question(raw: str, expected: str | None) -> None:
    assert clean_question(raw) == expected


def test_clean_question_is_a_fixed_point_on_its_output() -> None:
    q = clean_question("Question: - Which drug lowered blood pressure the most?")
    assert q == "Which drug lowered blood pressure the most?"
    assert clean_question(q) == q


# --- round trip -----------------------------------------------------------------------------


class FixedRetriever:
    def __init__(self, runs: dict[str, list[Hit]]) -> None:
        self.runs = runs

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.runs.get(query, [])[:k]


def fake_search(runs: dict[str, list[Hit]]) -> Pipeline:
    return Pipeline(config=PipelineConfig(retrievers=(BM25Config(),)), retrievers=[FixedRetriever(runs)])


def test_round_trip_keeps_questions_whose_chunk_or_document_is_found() -> None:
    a1, a2 = make_chunk("a#1", "alpha one", doc_id="a"), make_chunk("a#2", "alpha two", doc_id="a")
    b1 = make_chunk("b#1", "beta", doc_id="b")
    search = fake_search({
        "finds its chunk?": [make_hit("x", "x"), make_hit("a#1", "alpha one", doc_id="a")],
        "finds a sibling?": [make_hit("a#2", "alpha two", doc_id="a")],
        "found too deep?": [make_hit(f"x{i}", "x") for i in range(3)] + [make_hit("b#1", "beta", doc_id="b")],
        "finds nothing?": [],
    })  # fmt: skip
    pairs = [
        ("finds its chunk?", a1),
        ("finds a sibling?", a1),
        ("found too deep?", b1),
        ("finds nothing?", a2),
    ]
    assert round_trip_filter(pairs, search, k=3) == pairs[:2]
    assert round_trip_filter(pairs, search, k=3, level="chunk") == pairs[:1]
    assert round_trip_filter(pairs, search, k=4, level="chunk") == [pairs[0], pairs[2]]
    assert round_trip_filter([], search, k=3) == []


# --- the JSONL cache ------------------------------------------------------------------------


def test_pairs_round_trip_through_jsonl(tiny_index: Index, tmp_path: Path) -> None:
    chunks = list(tiny_index.store.iter_chunks())
    pairs = [("Who picks eleven hundred per hour?", chunks[-1]), ("Ünïcode question, “quoted”?", chunks[0])]
    save_pairs(tmp_path / "cache" / "pairs.jsonl", pairs)
    assert load_pairs(tmp_path / "cache" / "pairs.jsonl", tiny_index) == pairs


def test_load_pairs_drops_chunks_no_longer_indexed_and_names_bad_lines(
    tiny_index: Index, tmp_path: Path
) -> None:
    chunk = next(tiny_index.store.iter_chunks())
    gone = make_chunk("gone#0", "text that was re-indexed away")
    save_pairs(tmp_path / "p.jsonl", [("kept one?", chunk), ("stale one?", gone)])
    assert load_pairs(tmp_path / "p.jsonl", tiny_index) == [("kept one?", chunk)]
    (tmp_path / "bad.jsonl").write_text('{"question": "q?", "chunk_id": "x"}\n{"question": "no id"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_pairs(tmp_path / "bad.jsonl", tiny_index)


# --- sampling and generation ----------------------------------------------------------------


def test_sample_chunks_is_seeded_and_skips_short_chunks(tiny_index: Index) -> None:
    def words(t: str) -> int:
        return len(t.split())

    every = list(tiny_index.store.iter_chunks())
    first = sample_chunks(tiny_index, 100, 0, words, seed=1)
    assert sorted(c.id for c in first) == sorted(c.id for c in every)
    assert [c.id for c in sample_chunks(tiny_index, 2, 0, words, seed=1)] == [c.id for c in first[:2]]
    longest = max(words(c.text) for c in every)
    assert [c.id for c in sample_chunks(tiny_index, 100, longest, words, seed=1)] == [
        c.id for c in first if words(c.text) >= longest
    ]


def test_config_rejects_a_prompt_without_the_passage_and_greedy_repeats() -> None:
    with pytest.raises(ValueError, match="passage"):
        SyntheticConfig(prompt="Ask something.")
    with pytest.raises(ValueError, match="greedy"):
        SyntheticConfig(temperature=0, questions_per_chunk=2)


def tiny_chunks() -> list[Chunk]:
    return [
        make_chunk("c0", "Aspirin reduces the risk of heart attack in adults."),
        make_chunk(
            "c1", "Revenue grew ten percent compared with the prior quarter, as data center sales rose."
        ),
    ]


def test_generate_returns_questions_per_chunk_outputs_reproducibly(tiny_lm_path: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_lm_path))
    config = SyntheticConfig(questions_per_chunk=2, max_new_tokens=6, max_passage_tokens=32)
    prompts = [prompt_ids(tokenizer, c, config) for c in tiny_chunks()]
    assert len(prompts[0]) != len(prompts[1])  # so left padding is exercised
    first = generate(model, tokenizer, prompts, config, seed=3)
    assert len(first) == 4 and all(isinstance(t, str) for t in first)
    assert generate(model, tokenizer, prompts, config, seed=3) == first
    # the shorter prompt, padded, generates what it generates alone (greedy: no sampling noise)
    greedy = config.model_copy(update={"temperature": 0.0, "questions_per_chunk": 1})
    short = min(range(2), key=lambda i: len(prompts[i]))
    batched = generate(model, tokenizer, prompts, greedy, seed=0)[short]
    assert generate(model, tokenizer, [prompts[short]], greedy, seed=0) == [batched]


def test_write_questions_returns_clean_deduplicated_pairs(tiny_lm_path: Path) -> None:
    model, tokenizer = load_causal_lm(str(tiny_lm_path))
    chunks = tiny_chunks()
    config = SyntheticConfig(questions_per_chunk=3, max_new_tokens=24, batch_size=1, min_chars=1)
    seen: list[tuple[int, int]] = []
    pairs = write_questions(model, tokenizer, chunks, config, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    assert all(clean_question(q, 1) == q for q, _ in pairs)  # whatever survived is well-formed
    assert all(c in chunks for _, c in pairs)
    assert len({q.lower() for q, _ in pairs}) == len(pairs)
    assert write_questions(model, tokenizer, chunks, config) == pairs  # seeded


def test_synthetic_pairs_counts_add_up(
    tiny_lm_path: Path, tiny_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LM's output is scripted (a random tiny LM writes no questions) to check each filter's count."""
    scripted = iter([
        "Question: Which arm lifts twelve kilograms?", "no question",  # chunk 0: kept, dropped
        "Which arm lifts twelve kilograms?", "What rose eighteen percent?",  # chunk 1: duplicate, kept
        "What does the passage say?", "Lost in the round trip?",  # chunk 2: dropped, not found
    ])  # fmt: skip

    def fake_generate(
        model: object, tokenizer: object, prompts: list[list[int]], *a: object, **k: object
    ) -> list[str]:
        return [next(scripted) for _ in range(2 * len(prompts))]

    monkeypatch.setattr("ragsys.train.mining.synthetic.generate", fake_generate)
    chunks = {c.id: c for c in tiny_index.store.iter_chunks()}
    config = SyntheticConfig(model=str(tiny_lm_path), n_chunks=3, questions_per_chunk=2, min_chunk_tokens=1)
    sampled = sample_chunks(tiny_index, 3, 1, lambda t: 1, config.seed)
    search = fake_search({
        "Which arm lifts twelve kilograms?": [Hit(chunk=sampled[0], score=1.0, source="bm25")],
        "What rose eighteen percent?": [Hit(chunk=chunks[c], score=1.0, source="bm25") for c in chunks
                                        if chunks[c].doc_id == sampled[1].doc_id],
    })  # fmt: skip

    result = synthetic_pairs(tiny_index, search, config)

    assert (result.sampled, result.generated, result.well_formed, result.kept) == (3, 6, 3, 2)
    assert result.pairs == (
        ("Which arm lifts twelve kilograms?", sampled[0]),
        ("What rose eighteen percent?", sampled[1]),
    )
    assert result.rejected == 4
