"""`ragsys serve` refuses a public bind without a token before it opens anything."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragsys.cli.serve import serve
from tests.fixtures.serve import TOKEN


def test_cli_refuses_to_start_public_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGSYS_TOKEN", raising=False)
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("noop")(lambda: None)  # two commands, so `serve` is addressed by name as in ragsys.cli
    runner = CliRunner()
    started = time.perf_counter()
    r = runner.invoke(app, ["serve", "--index", str(tmp_path), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "RAGSYS_TOKEN" in r.output and time.perf_counter() - started < 5
    monkeypatch.setenv("RAGSYS_TOKEN", TOKEN)  # accepted from the environment: now the index is checked
    r = runner.invoke(app, ["serve", "--index", str(tmp_path / "none"), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "no index here" in " ".join(r.output.split())
