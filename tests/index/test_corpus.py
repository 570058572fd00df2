"""A BEIR `corpus.jsonl` as a corpus: one document per line, bad lines reported."""

from __future__ import annotations

import json
from pathlib import Path

from ragsys.index.build import index_paths
from ragsys.index.reader import Index
from ragsys.pipeline import PipelineConfig


def test_beir_corpus_jsonl(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    rows = [{"_id": "d1", "title": "Arms", "text": "The arm lifts twelve kilograms."},
            {"_id": "d2", "title": "", "text": "Floods ruined the harvest."}]  # fmt: skip
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n", encoding="utf-8")
    s = index_paths([path], tmp_path / "idx", tiny_pipeline.index_spec(), workers=1)
    assert s.files_indexed == 2 and len(s.files_failed) == 1 and ":3" in s.files_failed[0].path
    chunks = list(Index.open(tmp_path / "idx").store.iter_chunks())
    assert {c.doc_id for c in chunks} == {"d1", "d2"}
    assert chunks[0].text.startswith("Arms")
