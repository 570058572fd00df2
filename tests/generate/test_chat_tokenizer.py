"""The torch-free chat tokenizer renders, encodes and decodes exactly as transformers does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragsys.generate.chat_tokenizer import ChatTokenizerError, chat_tokenizer, load_chat_tokenizer
from ragsys.models import ModelLoadError, load_tokenizer, local_folder
from tests.fixtures.tiny_models import CORPUS

MESSAGES = [
    {"role": "system", "content": "Cite [n]. Else: I do not know."},
    {"role": "user", "content": "Passages:\n\n[1] (a.pdf, p. 3) " + CORPUS[0] + "\n\nQuestion: Does it?"},
]


def _same_as_transformers(folder: Path) -> None:
    fast, slow = load_chat_tokenizer(folder), load_tokenizer(str(folder))
    for generation in (True, False):
        text = fast.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=generation)
        assert text == slow.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=generation)
    ids = fast.encode(text, add_special_tokens=False)
    assert ids == slow.encode(text, add_special_tokens=False)
    for skip in (True, False):
        assert fast.decode(ids, skip_special_tokens=skip) == slow.decode(
            ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False
        )
    assert (fast.eos_token_id, fast.pad_token_id, fast.model_max_length) == (
        slow.eos_token_id, slow.pad_token_id, slow.model_max_length,
    )  # fmt: skip


def test_the_tiny_chat_model_tokenizes_as_transformers_does(tiny_lm_path: Path) -> None:
    _same_as_transformers(tiny_lm_path)


@pytest.mark.slow
def test_smollm2_tokenizes_as_transformers_does() -> None:
    try:
        _same_as_transformers(local_folder("smollm2-135m"))
    except ModelLoadError as e:
        pytest.skip(f"smollm2-135m is not available: {e}")


def test_a_folder_without_a_template_falls_back_to_transformers(tiny_lm_path: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(tiny_lm_path, bare)
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(ChatTokenizerError, match="chat template"):
        load_chat_tokenizer(bare)
    assert not getattr(chat_tokenizer(bare), "chat_template", None)  # transformers' own, also without one
