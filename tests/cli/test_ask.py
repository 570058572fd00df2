"""`ragsys ask` on tiny random models: the JSON shape, and a pipeline that cannot answer."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.pipeline import PipelineConfig

runner = CliRunner()


def test_ask_json_shape(rag: tuple[str, str, Path]) -> None:
    idx, pdir, _ = rag
    r = runner.invoke(app, ["ask", "how often do drives need grease", "--index", idx, "--pipeline", pdir,
                            "-k", "3", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) >= {"answer", "abstained", "citations", "contexts", "timings"}
    assert isinstance(out["answer"], str) and isinstance(out["abstained"], bool)
    assert 1 <= len(out["contexts"]) <= 3
    assert set(out["contexts"][0]) >= {"doc", "page_start", "page_end", "chunk_id", "text"}
    assert out["timings"]["new_tokens"] <= 8 and "retrieve_s" in out["timings"]


def test_ask_refuses_a_pipeline_without_generator(
    rag: tuple[str, str, Path], tiny_pipeline: PipelineConfig
) -> None:
    idx, _, tmp = rag
    tiny_pipeline.save(tmp / "nogen")
    r = runner.invoke(app, ["ask", "anything", "--index", idx, "--pipeline", str(tmp / "nogen")])
    assert r.exit_code == 2 and "no generator" in r.output
