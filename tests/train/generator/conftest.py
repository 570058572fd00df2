"""The tiny random Llama and its tokenizer, loaded once per module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragsys.models import load_causal_lm


@pytest.fixture(scope="module")
def lm(tiny_lm_path: Path) -> tuple[Any, Any]:
    return load_causal_lm(str(tiny_lm_path))
