"""Scoping: questions routed to the filings their company, period and form name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.scope import MetadataScoper, ScopeConfig, company_names, read_cues

DOCS = {
    f"/d/{year} Q{q} {ticker}.pdf": {
        "company": company, "ticker": ticker, "form": "10-Q", "period": f"{year} Q{q}",
        "period_end": f"{year}-{3 * q:02d}-28",
    }
    for ticker, company in (("AAPL", "Apple Inc."), ("AMZN", "AMAZON.COM, INC."), ("INTC", "INTEL CORP."))
    for year, q in (("2022", 3), ("2023", 1), ("2023", 2), ("2023", 3))
}  # fmt: skip


def _route(question: str, **config: float) -> tuple[list[str], float]:
    route = MetadataScoper(ScopeConfig(**config), DOCS).route(question)
    return [Path(d).name for d in route.filters.get("doc", ())], route.confidence


def test_company_names_drop_legal_suffixes() -> None:
    assert company_names({"company": "AMAZON.COM, INC.", "ticker": "AMZN"}) == {"amzn", "amazon"}
    assert company_names({"company": "Apple Inc."}) == {"apple"}


@pytest.mark.parametrize(
    ("question", "docs"),
    [
        ("What was Intel's R&D expenditure in Q1 2023?", ["2023 Q1 INTC.pdf"]),
        ("For Amazon's Q1 2023, how did share repurchases compare?", ["2023 Q1 AMZN.pdf"]),
        ("What were Apple's net sales in the third quarter of 2022?", ["2022 Q3 AAPL.pdf"]),
        ("Apple 3Q23 gross margin?", ["2023 Q3 AAPL.pdf"]),
        ("What did Intel report in its most recent 10-Q?", ["2023 Q3 INTC.pdf"]),
        (
            "How has Apple's total net sales changed over time?",
            [f"{p} AAPL.pdf" for p in ("2022 Q3", "2023 Q1", "2023 Q2", "2023 Q3")],
        ),
        ("How did AAPL and AMZN compare in 2022?", ["2022 Q3 AAPL.pdf", "2022 Q3 AMZN.pdf"]),
    ],
)
def test_questions_that_name_a_company_are_routed_to_its_filings(question: str, docs: list[str]) -> None:
    routed, confidence = _route(question)
    assert sorted(routed) == sorted(docs) and confidence == 1.0


def test_a_period_alone_is_a_weaker_route_and_min_confidence_can_refuse_it() -> None:
    routed, confidence = _route("Which company had the highest revenue in Q2 2023?")
    assert (
        sorted(routed) == ["2023 Q2 AAPL.pdf", "2023 Q2 AMZN.pdf", "2023 Q2 INTC.pdf"] and confidence == 0.5
    )
    assert _route("Which company had the highest revenue in Q2 2023?", min_confidence=0.75)[0] == []


def test_no_cue_or_no_match_does_not_restrict() -> None:
    assert _route("What are the main risk factors?") == ([], 0.0)
    # a company the index does not hold is no cue: only the period routes, weakly
    assert _route("What were Nvidia's sales in Q1 2023?")[1] == 0.5
    assert _route("What did Apple report in Q4 2021?")[0] == []  # no such filing


def test_a_comparison_of_periods_is_no_period_cue() -> None:
    cues = read_cues("How did revenue change from 2022 to 2023, and Q1 2023 vs Q2 2023?", {"apple"})
    assert cues.year is None and cues.quarter is None


def test_the_pipeline_searches_the_routed_documents(tmp_path: Path, tiny_pipeline) -> None:  # type: ignore[no-untyped-def]
    import json

    from ragsys.index.build import index_paths
    from ragsys.index.reader import Index
    from tests.fixtures.corpus import write_corpus

    docs = write_corpus(
        tmp_path / "docs", {f"{c}.txt": f"{c} revenue grew ten percent." for c in ("acme", "globex")}
    )
    rows = [{"file": f"{c}.txt", "company": f"{c.title()} Inc."} for c in ("acme", "globex")]
    (docs / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    index_paths([docs], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    pipeline = tiny_pipeline.model_copy(update={"scoping": ScopeConfig()}).build(Index.open(tmp_path / "idx"))
    hits = pipeline.search_many(["How did Globex revenue grow?", "How did Acme revenue grow?", "revenue"], 5)
    assert {Path(h.chunk.doc_id).name for h in hits[0]} == {"globex.txt"}
    assert {Path(h.chunk.doc_id).name for h in hits[1]} == {"acme.txt"}
    assert {Path(h.chunk.doc_id).name for h in hits[2]} == {"acme.txt", "globex.txt"}  # no cue: all
