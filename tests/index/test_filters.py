"""Metadata filters: applied before top-k in BM25 and dense retrieval, never leaking other documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragsys.index.build import index_paths
from ragsys.index.filters import FilterError, accepts, merge_filters, parse_filters
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig, PipelineError
from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.dense import DenseConfig

# Ten documents per company, all about revenue: an unfiltered top-k is dominated by whichever
# company's text scores higher, so a filter applied after top-k would return too few hits.
COMPANIES = {"alpha": "Alpha revenue revenue revenue grew", "beta": "Beta revenue grew slightly"}


def test_parse_and_merge() -> None:
    assert parse_filters(["company=AAPL", "period=2023 Q3", "period=2023 Q2"]) == {
        "company": ("AAPL",), "period": ("2023 Q3", "2023 Q2"),
    }  # fmt: skip
    with pytest.raises(FilterError, match="KEY=VALUE"):
        parse_filters(["company"])
    assert merge_filters({"form": ("10-Q",), "company": ("a",)}, {"company": ("b",)}) == {
        "form": ("10-Q",), "company": ("b",),
    }  # fmt: skip


def test_and_across_keys_or_within_globs_and_case() -> None:
    meta = {"company": "Apple Inc.", "period": "2023 Q3"}
    assert accepts(meta, "x", {"company": ("apple*",), "period": ("2023 Q2", "2023 Q3")})
    assert not accepts(meta, "x", {"company": ("apple*",), "period": ("2023 Q2",)})
    assert not accepts(meta, "x", {"ticker": ("AAPL",)})  # a missing field never matches
    assert accepts({}, "/data/2023 Q3 AAPL.pdf", {"doc": ("*AAPL*",)})
    assert not accepts({}, "/data/2023 Q3 AAPL.pdf", {"!doc": ("*AAPL*",)})  # an exclusion
    assert accepts(meta, "/data/2023 Q3 MSFT.pdf", {"!doc": ("*AAPL*",), "company": ("apple*",)})
    assert parse_filters(["!doc=*AAPL*"]) == {"!doc": ("*AAPL*",)}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig) -> Index:
    root = tmp_path_factory.mktemp("filtered")
    docs = root / "docs"
    docs.mkdir()
    rows = []
    for company, text in COMPANIES.items():
        for i in range(10):
            (docs / f"{company}-{i}.txt").write_text(f"{text} in quarter {i}.", encoding="utf-8")
            rows.append({"file": f"{company}-*.txt", "company": company.title()})
    (docs / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    index_paths([docs], root / "idx", tiny_pipeline.index_spec(), workers=1)
    return Index.open(root / "idx")


@pytest.mark.parametrize("retriever", ["bm25", "dense"])
def test_a_filtered_search_returns_k_hits_of_the_filtered_documents_only(
    index: Index, tiny_pipeline: PipelineConfig, retriever: str
) -> None:
    kind = BM25Config if retriever == "bm25" else DenseConfig
    config = tiny_pipeline.model_copy(
        update={"retrievers": tuple(r for r in tiny_pipeline.retrievers if isinstance(r, kind))}
    )
    pipeline = config.build(index)
    unfiltered = pipeline.search("alpha revenue", 10)
    assert {Path(h.chunk.doc_id).name[:4] for h in unfiltered} >= {"alph"}
    for company in ("Alpha", "Beta"):
        hits = pipeline.search("alpha revenue", 10, {"company": (company,)})
        assert len(hits) == 10  # k hits, because ten such documents exist
        assert {Path(h.chunk.doc_id).name.split("-")[0] for h in hits} == {company.lower()}
    assert pipeline.search("alpha revenue", 10, {"company": ("Gamma",)}) == []


def test_pipeline_filters_apply_to_every_search_and_a_request_replaces_them(
    index: Index, tiny_pipeline: PipelineConfig
) -> None:
    pipeline = tiny_pipeline.model_copy(update={"filters": {"company": ("Beta",)}}).build(index)
    assert {Path(h.chunk.doc_id).name[:4] for h in pipeline.search("revenue", 5)} == {"beta"}
    assert {
        Path(h.chunk.doc_id).name[:4] for h in pipeline.search("revenue", 5, {"company": ("Alpha",)})
    } == {"alph"}
    many = pipeline.search_many(["revenue", "grew"], 5)
    assert all(Path(h.chunk.doc_id).name.startswith("beta") for hits in many for h in hits)


def test_a_pipeline_without_its_index_cannot_filter(index: Index, tiny_pipeline: PipelineConfig) -> None:
    from dataclasses import replace

    pipeline = replace(tiny_pipeline.build(index), index=None)
    with pytest.raises(PipelineError, match="cannot filter"):
        pipeline.search("revenue", 5, {"company": ("Beta",)})
