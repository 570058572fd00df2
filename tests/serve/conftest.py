"""The app under test: one tiny index for the whole folder (read only), a fresh feedback store and
client per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragsys.feedback.store import FeedbackStore
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig
from tests.fixtures.serve import build_tiny_index, make_client


@pytest.fixture(scope="package")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Iterator[Index]:
    index = Index.open(build_tiny_index(tmp_path_factory.mktemp("serve"), tiny_pipeline))
    yield index
    index.close()


@pytest.fixture(scope="package")
def search(tiny_index: Index, tiny_pipeline: PipelineConfig) -> Pipeline:
    return tiny_pipeline.build(tiny_index)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    with FeedbackStore.open(tmp_path / "feedback.db") as s:
        yield s


@pytest.fixture()
def client(search: Pipeline, tiny_index: Index, store: FeedbackStore) -> Iterator[TestClient]:
    with make_client(search, tiny_index, store) as c:
        yield c
