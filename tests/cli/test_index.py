"""`ragsys index`, `search` and `inspect`: JSON summaries, incremental re-runs, exit codes and
one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragsys.cli.app import app
from ragsys.pipeline import PipelineConfig
from tests.fixtures.corpus import write_corpus

runner = CliRunner()


def _pipeline_dir(tmp_path: Path, config: PipelineConfig) -> str:
    d = tmp_path / "pipeline"
    d.mkdir(exist_ok=True)
    config.to_yaml(d / "pipeline.yaml")
    return str(d)


def test_index_search_inspect_json(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    corpus = write_corpus(tmp_path / "docs")
    p = _pipeline_dir(tmp_path, tiny_pipeline)
    idx = str(tmp_path / "idx")
    r = runner.invoke(
        app, ["index", str(corpus), "--index", idx, "--pipeline", p, "--workers", "1", "--json"]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary) >= {
        "files_indexed",
        "files_skipped_unchanged",
        "files_failed",
        "pages",
        "chunks",
        "seconds",
    }
    assert summary["files_indexed"] == 3 and summary["files_failed"] == []
    r = runner.invoke(app, ["index", str(corpus), "--index", idx, "--pipeline", p, "--json"])
    again = json.loads(r.stdout.strip().splitlines()[-1])
    assert again["files_skipped_unchanged"] == 3 and again["chunks"] == summary["chunks"]

    r = runner.invoke(
        app, ["search", "harmonic drive grease", "--index", idx, "--pipeline", p, "-k", "2", "--json"]
    )
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout.strip().splitlines()[-1])["hits"]
    assert len(hits) == 2
    assert set(hits[0]) == {"doc", "page_start", "page_end", "chunk_id", "score", "text"}
    assert hits[0]["doc"].endswith("robots.md") and "grease" in hits[0]["text"]

    r = runner.invoke(app, ["inspect", idx, "--pipeline", p, "--json"])
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["documents"] == 3 and "train one" in info["reranker"]
    assert {Path(d).name: m["file"] for d, m in info["metadata"].items()} == {
        "fruit.md": "fruit.md", "notes.txt": "notes.txt", "robots.md": "robots.md",
    }  # fmt: skip

    # --filter: hits only from the documents that pass it
    r = runner.invoke(
        app,
        [
            "search",
            "harmonic drive grease",
            "--index",
            idx,
            "--pipeline",
            p,
            "--filter",
            "file=fruit.*",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout.strip().splitlines()[-1])["hits"]
    assert hits and all(h["doc"].endswith("fruit.md") for h in hits)
    r = runner.invoke(app, ["search", "grease", "--index", idx, "--pipeline", p, "--filter", "file"])
    assert r.exit_code != 0 and "KEY=VALUE" in r.output


def test_index_exit_codes(tmp_path: Path, tiny_pipeline: PipelineConfig) -> None:
    p = _pipeline_dir(tmp_path, tiny_pipeline)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    r = runner.invoke(app, ["index", str(bad), "--index", str(tmp_path / "i1"), "--pipeline", p, "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout.strip().splitlines()[-1])["files_failed"][0]["path"].endswith("broken.pdf")
    write_corpus(bad, {"ok.txt": "fine text here"})
    r = runner.invoke(app, ["index", str(bad), "--index", str(tmp_path / "i2"), "--pipeline", p])
    assert r.exit_code == 0
    r = runner.invoke(app, ["index", str(bad), "--index", str(tmp_path / "i3"), "--pipeline", p, "--strict"])
    assert r.exit_code == 1


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "none")])
    assert r.exit_code == 2 and "ragsys index" in r.output
    r = runner.invoke(app, ["search", "x", "--index", str(tmp_path), "--pipeline", "nope.py"])
    assert r.exit_code == 2 and "nope.py" in r.output


def test_inspect_says_what_the_generator_adapter_was_trained_on(
    tmp_path: Path, tiny_pipeline: PipelineConfig, tiny_lm_path: Path
) -> None:
    from ragsys.generate.config import GeneratorConfig
    from ragsys.models import ADAPTER_CARD, adapter_card

    corpus = write_corpus(tmp_path / "docs")
    idx = str(tmp_path / "idx")
    p = _pipeline_dir(tmp_path, tiny_pipeline)
    assert (
        runner.invoke(
            app, ["index", str(corpus), "--index", idx, "--pipeline", p, "--workers", "1"]
        ).exit_code
        == 0
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / ADAPTER_CARD).write_text(json.dumps({"trained_on": "invented reports, never the test split"}))
    assert adapter_card(str(adapter)) == {"trained_on": "invented reports, never the test split"}
    assert adapter_card(str(tmp_path)) is None  # a folder without a card
    with_adapter = tiny_pipeline.model_copy(
        update={"generator": GeneratorConfig(model=str(tiny_lm_path), adapter=str(adapter))}
    )
    gen_dir = tmp_path / "gen"
    with_adapter.save(gen_dir)
    r = runner.invoke(app, ["inspect", idx, "--pipeline", str(gen_dir), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["generator"]["adapter_trained_on"] == "invented reports, never the test split"
