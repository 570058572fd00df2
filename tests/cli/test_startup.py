"""The command line starts fast: importing the app loads no model, PDF, index or server library.

Each command imports what it needs when it runs, so `ragsys --help` and `ragsys search` do not
pay for torch or transformers. A fresh interpreter is the only honest check: the test session
has imported all of them already.
"""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures.paths import REPO_ROOT

HEAVY = (
    "torch", "transformers", "peft", "sentence_transformers", "pymupdf", "fitz", "datasets", "faiss",
    "numba", "fastapi", "uvicorn",
)  # fmt: skip


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_app_loads_no_heavy_library() -> None:
    code = f"import sys, ragsys.cli.app; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    r = _python("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"loaded at import: {r.stdout.strip()}"


def test_help_exits_zero() -> None:
    r = _python("-m", "ragsys.cli", "--help")
    assert r.returncode == 0, r.stderr
    assert "Retrieval-augmented generation as a system." in r.stdout
