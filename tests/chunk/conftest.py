"""The tiny WordPiece tokenizer, shared by the chunker and token-counter tests."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from tests.fixtures.tiny_models import _wordpiece_tokenizer


@pytest.fixture(scope="module")
def wordpiece() -> PreTrainedTokenizerFast:
    return _wordpiece_tokenizer()
