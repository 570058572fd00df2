"""Which runtime encodes: the choice a `DenseConfig` or `CrossEncoderConfig` makes, resolved here.

Measured on the project's 2-core CPU (AVX-512 with VNNI and BF16; all-MiniLM-L6-v2, SciFact
abstracts at 256 tokens, batches of 64; docs/results.md has the table and command):

| backend          | docs/s vs torch fp32 | SciFact nDCG@10 (fp32 0.6451) |
|------------------|----------------------|-------------------------------|
| torch-bf16       | 1.8x                 | cosine 0.99997                |
| onnxruntime int8 | 1.8x                 | cosine 0.990                  |
| openvino (fp32)  | 1.3x                 | identical                     |
| openvino-bf16    | 2.4x                 | 0.6457                        |
| openvino-int8    | 3.3-3.6x             | 0.6433                        |

So "auto" means `openvino-int8` where OpenVINO and NNCF are installed and the CPU has int8
dot-product instructions (VNNI or AMX), `openvino-bf16` where it has bf16 ones, `openvino`
elsewhere, and torch (bf16 where the CPU has it) when OpenVINO is missing. ONNX Runtime is
not offered: it was slower than OpenVINO at every precision here, and sentence-transformers'
own `backend="onnx"|"openvino"` needs optimum, whose releases pin transformers below the 5.x
ragsys runs on, so the export goes through OpenVINO's own `convert_model` and NNCF instead.

An explicit backend that cannot run here (the package is missing) falls back the same way,
saying so once on stderr: never a crash for want of an accelerator.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Literal

EncoderBackend = Literal["auto", "torch", "torch-bf16", "openvino", "openvino-bf16", "openvino-int8"]
Resolved = Literal["torch", "torch-bf16", "openvino", "openvino-bf16", "openvino-int8"]

INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: then no fast paths)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_bf16() -> bool:
    return any(f in cpu_flags() for f in BF16_FLAGS)


def has_int8() -> bool:
    return any(f in cpu_flags() for f in INT8_FLAGS)


def openvino_installed(int8: bool = False) -> bool:
    found = importlib.util.find_spec("openvino") is not None
    return found and (not int8 or importlib.util.find_spec("nncf") is not None)


@functools.cache
def note(message: str) -> None:
    print(f"ragsys: {message}", file=sys.stderr, flush=True)


def resolve_backend(requested: EncoderBackend) -> Resolved:
    """The backend that will run for `requested` on this machine (see the module docstring)."""
    if requested == "auto":
        return _best()
    if requested.startswith("openvino") and not openvino_installed(int8=requested == "openvino-int8"):
        instead = _torch_best()
        note(f"encoder backend {requested!r} needs `pip install 'ragsys[fast]'`; using {instead!r}")
        return instead
    if requested in ("torch-bf16", "openvino-bf16") and not has_bf16():
        plain: Resolved = "torch" if requested == "torch-bf16" else "openvino"
        note(f"this CPU has no bf16 instructions; encoder backend {requested!r} runs as {plain!r}")
        return plain
    return requested


def _best() -> Resolved:
    if openvino_installed(int8=True) and has_int8():
        return "openvino-int8"
    if openvino_installed():
        return "openvino-bf16" if has_bf16() else "openvino"
    return _torch_best()


def _torch_best() -> Resolved:
    return "torch-bf16" if has_bf16() else "torch"
