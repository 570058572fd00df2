"""A chat tokenizer without transformers: the `tokenizers` library plus the model's Jinja template.

The llama.cpp and HTTP backends need a tokenizer only to pack passages, render the chat
template and turn ids back into text. Loading one through `transformers` imports torch, about
1.6 s of a cold `ragsys ask` that then never uses it. This reads the same files transformers
saves (`tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`) and renders the
template the way transformers does (a sandboxed Jinja environment with `trim_blocks`,
`lstrip_blocks`, loop controls, `tojson` and `raise_exception`); tests check both give the
same text and ids on the project's models. Anything else (no `tokenizer.json`, a template
that needs more) falls back to transformers.

Example:
    >>> tok = chat_tokenizer(Path("~/.cache/ragsys/models/smollm2-135m").expanduser())  # doctest: +SKIP
    >>> tok.encode("Hello", add_special_tokens=False)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Template
    from tokenizers import Tokenizer

    from ragsys.generate.prompt import ChatTokenizer

SPECIAL_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token")


class ChatTokenizerError(ValueError):
    """The folder has no tokenizer this module can read; the caller falls back to transformers."""


class FastChatTokenizer:
    """The slice of a transformers tokenizer that prompt building, streaming and llama.cpp use."""

    def __init__(self, tokenizer: Tokenizer, settings: dict[str, Any], template: str) -> None:
        self._tokenizer = tokenizer
        self.chat_template = template
        self.model_max_length = int(settings.get("model_max_length") or 10**30)
        self._special = {key: _token_text(settings.get(key)) for key in SPECIAL_KEYS}
        self.eos_token_id = self._id(self._special["eos_token"])
        self.pad_token_id = self._id(self._special["pad_token"])
        self.bos_token_id = self._id(self._special["bos_token"])
        self._compiled: Template | None = None

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._tokenizer.token_to_id(token)

    def __len__(self) -> int:
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def apply_chat_template(
        self, conversation: list[dict[str, str]], *, tokenize: bool, add_generation_prompt: bool
    ) -> Any:
        if self._compiled is None:
            self._compiled = compile_template(self.chat_template)
        specials = {k: v for k, v in self._special.items() if v is not None}
        text = self._compiled.render(
            messages=conversation, add_generation_prompt=add_generation_prompt, **specials
        )
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(
        self,
        token_ids: Sequence[int],
        *,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool = False,
    ) -> str:
        if clean_up_tokenization_spaces:
            raise ChatTokenizerError(
                "clean_up_tokenization_spaces is not supported; ragsys never asks for it"
            )
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens))


def load_chat_tokenizer(folder: Path) -> FastChatTokenizer:
    """The folder's tokenizer, read without transformers (ChatTokenizerError when it cannot be)."""
    from tokenizers import Tokenizer

    if not (folder / "tokenizer.json").is_file():
        raise ChatTokenizerError(f"{folder} has no tokenizer.json")
    settings: dict[str, Any] = {}
    if (folder / "tokenizer_config.json").is_file():
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = settings.get("chat_template")
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if not isinstance(template, str) or not template:
        raise ChatTokenizerError(f"{folder} has no single chat template")
    return FastChatTokenizer(Tokenizer.from_file(str(folder / "tokenizer.json")), settings, template)


def chat_tokenizer(folder: Path) -> ChatTokenizer:
    """The folder's tokenizer without importing torch where it can be read so, else through transformers."""
    from ragsys.models import load_tokenizer

    try:
        return load_chat_tokenizer(folder)
    except ChatTokenizerError:
        slow: ChatTokenizer = load_tokenizer(str(folder))
        return slow


def compile_template(source: str) -> Template:
    """A chat template compiled as transformers compiles it (see the module docstring)."""
    from jinja2.exceptions import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **_: Any) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json stores it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None
