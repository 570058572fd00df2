"""A tiny indexed corpus with a pipeline that answers (the tiny random LM), for `ask` and `eval`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.generate.config import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus

runner = CliRunner()


@pytest.fixture()
def rag(tmp_path: Path, tiny_pipeline: PipelineConfig, tiny_lm_path: Path) -> tuple[str, str, Path]:
    config = tiny_pipeline.model_copy(
        update={
            "generator": GeneratorConfig(
                model=str(tiny_lm_path), max_new_tokens=8, context_tokens=64, system_prompt="Answer briefly."
            )
        }
    )
    pdir = tmp_path / "pipeline"
    config.save(pdir)
    idx = str(tmp_path / "idx")
    corpus = write_corpus(tmp_path / "docs")
    r = runner.invoke(app, ["index", str(corpus), "--index", idx, "--pipeline", str(pdir), "--workers", "1"])
    assert r.exit_code == 0, r.output
    return idx, str(pdir), tmp_path
