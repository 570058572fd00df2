"""Extraction errors name the file, the reason and the fix, and survive pickling."""

from __future__ import annotations

import pickle

from ragsys.extract import EncryptedError


def test_errors_name_file_reason_fix_and_pickle() -> None:
    err = EncryptedError("/x/a.pdf", "the PDF is encrypted")
    assert str(err) == "/x/a.pdf: the PDF is encrypted (fix: " + EncryptedError.fix + ")"
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.path, again.reason) == (EncryptedError, err.path, err.reason)
