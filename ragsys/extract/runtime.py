"""Run PyMuPDF's layout model (the bulk of `find_tables`) on one thread, without spinning.

`import pymupdf` builds onnxruntime sessions with default options: a thread per
core whose idle threads spin. On the SEC filings that burned about 40% more CPU
for the same tables and made two extraction processes on two cores slower than
one (eval/bench/extract.py). One thread per process is also what a process pool
wants. PyMuPDF offers no setting for this, so the model is rebuilt once per
process with lean session options, which are swapped in only for that rebuild.
If PyMuPDF's internals change, this quietly keeps the model it has.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def use_lean_layout_model() -> bool:
    """Rebuild the layout model with single-threaded sessions; True when that worked."""
    import pymupdf

    try:
        import onnxruntime as ort
        from pymupdf import layout
    except ImportError:
        return False
    original: Any = ort.SessionOptions
    previous = pymupdf._get_layout
    ort.SessionOptions = _lean_options(original)
    try:
        pymupdf._get_layout = None
        layout.activate()  # type: ignore[no-untyped-call]
    except Exception:  # keep the model PyMuPDF built
        pymupdf._get_layout = previous
        return False
    finally:
        ort.SessionOptions = original
    return True


def _lean_options(base: Any) -> Any:
    class LeanSessionOptions(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.intra_op_num_threads = 1
            self.inter_op_num_threads = 1
            self.add_session_config_entry("session.intra_op.allow_spinning", "0")

    return LeanSessionOptions
