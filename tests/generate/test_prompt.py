"""Prompt building with the tiny model's real tokenizer and ChatML template (no model weights)."""

from __future__ import annotations

import copy

import pytest

from ragsys.generate.prompt import (
    PASSAGE_SEP,
    TRUNCATION_MARK,
    ChatTokenizer,
    build_prompt,
    count_tokens,
    pack_passages,
    passage_cost,
    passage_header,
)
from ragsys.models import load_tokenizer
from ragsys.types import Hit
from tests.fixtures.factories import make_hit
from tests.fixtures.tiny_models import CORPUS, make_tiny_causal_lm

SHORT_A, SHORT_B, SHORT_C = CORPUS[0], CORPUS[4], CORPUS[28]
LONG = " ".join(CORPUS[:12])


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> ChatTokenizer:
    tokenizer: ChatTokenizer = load_tokenizer(str(make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))))
    return tokenizer


def _hit(cid: str, text: str, title: str = "", pages: tuple[int, int] = (1, 1)) -> Hit:
    return make_hit(
        cid,
        text,
        chunk_source=f"/data/reports/{cid}.pdf",
        page_start=pages[0],
        page_end=pages[1],
        title=title,
    )


def _cost(tok: ChatTokenizer, n: int, hit: Hit) -> int:
    return passage_cost(tok, passage_header(n, hit.chunk) + hit.chunk.text)


def test_everything_fits_in_order_with_contiguous_numbers(tok: ChatTokenizer) -> None:
    hits = [_hit("a", SHORT_A), _hit("b", SHORT_B), _hit("c", SHORT_C)]
    packed = pack_passages(hits, tok, budget=10_000)
    assert [(p.n, p.hit.chunk.id) for p in packed.passages] == [(1, "a"), (2, "b"), (3, "c")]
    assert (packed.dropped, packed.truncated) == (0, 0)
    assert packed.passages[1].text == f"[2] (b.pdf, p. 1) {SHORT_B}"
    assert not any(p.truncated for p in packed.passages)


def test_a_passage_that_does_not_fit_is_skipped_and_later_ones_still_packed(tok: ChatTokenizer) -> None:
    hits = [_hit("a", SHORT_A), _hit("long", LONG), _hit("c", SHORT_C)]
    budget = _cost(tok, 1, hits[0]) + _cost(tok, 2, hits[2]) + 2  # room for both shorts, not the long one
    assert _cost(tok, 2, hits[1]) > budget
    packed = pack_passages(hits, tok, budget)
    assert [(p.n, p.hit.chunk.id) for p in packed.passages] == [(1, "a"), (2, "c")]
    assert packed.passages[1].text.startswith("[2] ")  # numbering skips nothing
    assert (packed.dropped, packed.truncated) == (1, 0)
    assert sum(p.tokens for p in packed.passages) <= budget


def test_packing_stops_adding_once_the_budget_is_spent(tok: ChatTokenizer) -> None:
    hits = [_hit(str(i), CORPUS[i]) for i in range(6)]
    budget = sum(_cost(tok, i + 1, h) for i, h in enumerate(hits[:3]))
    packed = pack_passages(hits, tok, budget)
    assert [p.hit.chunk.id for p in packed.passages] == ["0", "1", "2"]
    assert packed.dropped == 3
    assert sum(p.tokens for p in packed.passages) == budget


def test_when_nothing_fits_the_first_passage_is_truncated_and_marked(tok: ChatTokenizer) -> None:
    hits = [_hit("long", LONG, title="Big report"), _hit("long2", LONG + " " + LONG)]
    budget = 60
    assert all(_cost(tok, 1, h) > budget for h in hits)
    packed = pack_passages(hits, tok, budget)
    assert (packed.dropped, packed.truncated) == (1, 1)
    (only,) = packed.passages
    assert only.n == 1 and only.truncated and only.hit.chunk.id == "long"
    assert only.text.endswith(TRUNCATION_MARK)
    header = "[1] (Big report, p. 1) "
    body = only.text[len(header) : -len(TRUNCATION_MARK)]
    assert only.text.startswith(header) and len(body) > 20 and LONG.startswith(body)
    assert only.tokens == passage_cost(tok, only.text) <= budget


def test_no_hits_packs_nothing(tok: ChatTokenizer) -> None:
    packed = pack_passages([], tok, budget=100)
    assert packed.passages == () and (packed.dropped, packed.truncated) == (0, 0)


def test_header_prefers_the_title_and_shows_page_ranges(tok: ChatTokenizer) -> None:
    assert passage_header(3, _hit("x", "t", pages=(4, 4)).chunk) == "[3] (x.pdf, p. 4) "
    assert passage_header(1, _hit("x", "t", title="Annual report", pages=(2, 5)).chunk) == (
        "[1] (Annual report, pp. 2-5) "
    )


def test_prompt_uses_the_chat_template(tok: ChatTokenizer) -> None:
    hits = [_hit("a", SHORT_A), _hit("b", SHORT_B)]
    prompt = build_prompt("Does aspirin help?", hits, tok, system_prompt="Cite [n].", context_tokens=500)
    user = (
        f"Passages:\n\n[1] (a.pdf, p. 1) {SHORT_A}{PASSAGE_SEP}[2] (b.pdf, p. 1) {SHORT_B}"
        "\n\nQuestion: Does aspirin help?"
    )
    assert prompt.text == (
        f"<|im_start|>system\nCite [n].<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert list(prompt.ids) == tok.encode(prompt.text, add_special_tokens=False)
    assert prompt.numbered() == {1: hits[0], 2: hits[1]}
    assert count_tokens(tok, prompt.text) == len(prompt.ids)


def test_a_template_without_a_system_role_gets_the_instruction_in_the_user_turn(tok: ChatTokenizer) -> None:
    strict = copy.deepcopy(tok)
    strict.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    prompt = build_prompt("Why?", [_hit("a", SHORT_A)], strict, system_prompt="Cite [n].", context_tokens=99)
    assert prompt.text.startswith("<|im_start|>user\nCite [n].\n\nPassages:\n\n[1] ")
    assert "system" not in prompt.text
