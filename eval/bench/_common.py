"""Helpers shared by the torch benches (embed.py, generate.py), imported as `_common`.

Running `python eval/bench/NAME.py` puts this folder first on sys.path, so no package is needed.
"""

from __future__ import annotations

import platform
import sys

import torch


def log(message: str) -> None:
    """Progress goes to stderr, so the last line of stdout stays the one JSON result."""
    print(message, file=sys.stderr, flush=True)


def cpu_environment() -> dict[str, object]:
    """What a CPU timing depends on, reported beside it so runs can be compared."""
    return {
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
