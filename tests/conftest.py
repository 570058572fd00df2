"""Shared fixtures: tiny random models built from configs once per session (offline), and the
data sets that tests in more than one folder use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ragsys.eval.evalset import EvalItem
    from ragsys.pipeline import PipelineConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Exports the tests make (OpenVINO copies and GGUFs of tiny models) go to a throwaway cache, never
# the user's; `make test-slow` converts the real SmolLM2 into it once per session.
_CACHE = tempfile.TemporaryDirectory(prefix="ragsys-test-cache-")
os.environ.setdefault("RAGSYS_CACHE", _CACHE.name)


@pytest.fixture(scope="session")
def tiny_st_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.tiny_models import make_tiny_sentence_transformer

    return make_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st"))


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_st_path: Path):  # type: ignore[no-untyped-def]
    """BM25 + a tiny dense encoder, small chunks: the default pipeline's shape, in miniature."""
    from ragsys.chunk.chunker import ChunkConfig
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config
    from ragsys.retrieve.dense import DenseConfig

    return PipelineConfig(
        name="tiny",
        chunking=ChunkConfig(max_tokens=48, overlap_tokens=8, tokenizer=str(tiny_st_path)),
        retrievers=(BM25Config(), DenseConfig(model=str(tiny_st_path))),
    )


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """Tiny models gain nothing from intra-op threads, and on a busy CPU the threads spin."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


# --- BM25 token corpora (tests/retrieve and tests/comparison) ---------------------------------


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[str]], list[list[str]]]:
    from tests.fixtures.bm25 import synthetic_corpus

    return synthetic_corpus()


@pytest.fixture(scope="module")
def scifact() -> tuple[list[list[str]], list[list[str]]]:
    import json

    from ragsys.retrieve.tokenize import Tokenizer
    from tests.fixtures.bm25 import PLAIN, SCIFACT

    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {SCIFACT} (see shared/data/README)")
    tokenizer = Tokenizer(PLAIN)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(300), f, strict=False)]
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(40), f, strict=False)]
    return tokenizer.tokenize_many(d["title"] + " " + d["text"] for d in docs), tokenizer.tokenize_many(
        queries
    )


# --- the test corpus indexed, two train questions per file (tests/train and tests/cli) ---------


@pytest.fixture(scope="session")
def built(
    tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig
) -> tuple[Path, list[EvalItem]]:
    """The tiny pipeline's index of `DOCS`, and train questions (`QUESTIONS`) with their gold files."""
    from ragsys.eval.evalset import EvalItem
    from ragsys.index.build import index_paths
    from tests.fixtures.corpus import QUESTIONS, write_corpus

    root = tmp_path_factory.mktemp("train-retriever")
    corpus = write_corpus(root / "docs")
    index_paths([corpus], root / "index", tiny_pipeline.index_spec(), workers=1)
    items = [
        EvalItem(id=f"{name}-{i}", question=q, split="train", gold_doc_ids=(str((corpus / name).resolve()),))
        for name, qs in QUESTIONS.items()
        for i, q in enumerate(qs)
    ]
    return root, items
