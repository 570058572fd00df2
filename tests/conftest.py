"""Shared fixtures: tiny random models built from configs once per session (offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_st_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_sentence_transformer

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
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
