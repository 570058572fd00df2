"""Prompt building: numbered passages packed into a token budget, then the model's chat template.

Pure functions over a tokenizer (no model), so packing is tested exactly. The user
message reads::

    Passages:

    [1] (annual-report.pdf, p. 3) Revenue grew ten percent ...

    [2] (annual-report.pdf, pp. 7-8) ...

    Question: What was revenue growth?

Packing is greedy in the order given (most relevant first): a passage that does not fit
the remaining budget is skipped and later, shorter ones are still tried, so one long
chunk cannot crowd out everything behind it. Numbers stay contiguous over the passages
used, so `[n]` always names the n-th passage the model saw. Only when *no* passage fits
is the first one cut at a token boundary, and then visibly marked with `TRUNCATION_MARK`,
so neither the model nor a reader mistakes a fragment for the whole passage.

Example:
    >>> prompt = build_prompt("What grew?", hits, tok, system_prompt=SYS, context_tokens=99)  # doctest: +SKIP
    >>> [(p.n, p.hit.chunk.id) for p in prompt.passages], prompt.dropped  # doctest: +SKIP
    ([(1, 'c7'), (2, 'c2')], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any, NamedTuple, Protocol

from ragsys.generate.tables import TableFormat, linearize_tables
from ragsys.types import Chunk, Frozen, Hit

PASSAGE_SEP = "\n\n"
TRUNCATION_MARK = " … [truncated]"


class ChatTokenizer(Protocol):
    """What prompt building needs of a Hugging Face tokenizer (one with a chat template)."""

    def apply_chat_template(
        self, conversation: list[dict[str, str]], *, tokenize: bool, add_generation_prompt: bool
    ) -> Any: ...

    def encode(self, text: str, *, add_special_tokens: bool) -> list[int]: ...

    def decode(
        self, token_ids: list[int], *, skip_special_tokens: bool, clean_up_tokenization_spaces: bool
    ) -> str | list[str]: ...


class Passage(Frozen):
    """One numbered passage as placed in the prompt; `text` is exactly what the model saw."""

    n: int
    hit: Hit
    text: str
    tokens: int
    truncated: bool = False


class Prompt(Frozen):
    """A rendered prompt: `text` is the chat-templated string, `ids` its tokens (no extra specials)."""

    text: str
    ids: tuple[int, ...]
    passages: tuple[Passage, ...]
    dropped: int = 0  # passages skipped because they did not fit the budget
    truncated: int = 0  # 1 when nothing fit and the first passage was cut

    def numbered(self) -> dict[int, Hit]:
        """Passage number -> hit: what citations in the answer are resolved against."""
        return {p.n: p.hit for p in self.passages}


class Packed(NamedTuple):
    passages: tuple[Passage, ...]
    dropped: int
    truncated: int


def decode(tokenizer: ChatTokenizer, ids: list[int], skip_special_tokens: bool = False) -> str:
    """Token ids back to text exactly: no space clean-up, which rewrites text (" ." -> ".")."""
    text = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False)
    if not isinstance(text, str):
        raise TypeError(f"tokenizer.decode returned {type(text).__name__} for one sequence")
    return text


def count_tokens(tokenizer: ChatTokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def doc_label(chunk: Chunk) -> str:
    """The title when the corpus has one, else the file name (never a long absolute path)."""
    if chunk.title:
        return chunk.title
    return PurePath(chunk.source).name or chunk.doc_id


def passage_header(n: int, chunk: Chunk) -> str:
    pages = (
        f"p. {chunk.page_start}"
        if chunk.page_end == chunk.page_start
        else (f"pp. {chunk.page_start}-{chunk.page_end}")
    )
    return f"[{n}] ({doc_label(chunk)}, {pages}) "


def passage_cost(tokenizer: ChatTokenizer, text: str) -> int:
    """Tokens a passage takes with its separator.

    Counted one passage at a time: a BPE merge across the separator can make the packed
    total differ from the sum by a token or so per passage, a negligible error.
    """
    return count_tokens(tokenizer, text + PASSAGE_SEP)


def passage_body(chunk: Chunk, tables: TableFormat = "markdown") -> str:
    """The chunk's text as the model reads it: tables as extracted, or one row per line."""
    text = chunk.text.strip()
    return linearize_tables(text) if tables == "rows" else text


def pack_passages(
    hits: Sequence[Hit], tokenizer: ChatTokenizer, budget: int, tables: TableFormat = "markdown"
) -> Packed:
    """Greedy packing in the given order; see the module docstring for the rules."""
    passages: list[Passage] = []
    used = 0
    for hit in hits:
        text = passage_header(len(passages) + 1, hit.chunk) + passage_body(hit.chunk, tables)
        cost = passage_cost(tokenizer, text)
        if used + cost <= budget:
            passages.append(Passage(n=len(passages) + 1, hit=hit, text=text, tokens=cost))
            used += cost
    if passages or not hits:
        return Packed(tuple(passages), len(hits) - len(passages), 0)
    return Packed((truncate_passage(hits[0], tokenizer, budget, tables),), len(hits) - 1, 1)


def truncate_passage(
    hit: Hit, tokenizer: ChatTokenizer, budget: int, tables: TableFormat = "markdown"
) -> Passage:
    """Passage [1] cut to the longest token prefix that fits with its header and the mark."""
    header = passage_header(1, hit.chunk)
    body_ids = tokenizer.encode(passage_body(hit.chunk, tables), add_special_tokens=False)
    room = budget - passage_cost(tokenizer, header + TRUNCATION_MARK)
    keep = max(min(room, len(body_ids)), 0)
    while True:
        body = decode(tokenizer, body_ids[:keep])
        text = header + body.rstrip("\ufffd").rstrip() + TRUNCATION_MARK  # no half-decoded character
        cost = passage_cost(tokenizer, text)
        if cost <= budget or keep == 0:  # re-tokenizing can merge differently: shrink until it fits
            return Passage(n=1, hit=hit, text=text, tokens=cost, truncated=True)
        keep -= 1


def user_message(passages: Sequence[Passage], query: str) -> str:
    body = PASSAGE_SEP.join(p.text for p in passages)
    return f"Passages:\n\n{body}\n\nQuestion: {query.strip()}"


def render_chat(tokenizer: ChatTokenizer, system: str, user: str) -> str:
    """The chat template's text with the assistant turn opened.

    Some templates (Gemma's) reject a system role; then the instruction leads the user turn.
    """
    from jinja2 import TemplateError

    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError:
        merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
        text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, not str")
    return text


def build_prompt(
    query: str,
    hits: Sequence[Hit],
    tokenizer: ChatTokenizer,
    *,
    system_prompt: str,
    context_tokens: int,
    tables: TableFormat = "markdown",
) -> Prompt:
    """Pack `hits` into `context_tokens`, then template system + user messages.

    `tables="rows"` rewrites markdown tables one row per line (`ragsys.generate.tables`).

    `ids` are encoded without added special tokens: the template already wrote BOS or
    whatever markers the model expects, and adding them again would double them.
    """
    packed = pack_passages(hits, tokenizer, context_tokens, tables)
    text = render_chat(tokenizer, system_prompt, user_message(packed.passages, query))
    ids = tokenizer.encode(text, add_special_tokens=False)
    return Prompt(
        text=text,
        ids=tuple(ids),
        passages=packed.passages,
        dropped=packed.dropped,
        truncated=packed.truncated,
    )
