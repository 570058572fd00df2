"""Properties of eval-set parsing (`ragsys.eval.evalset`) over generated files.

Its contract is fail-fast: blank lines are skipped, every good line becomes an item, in order,
and the first bad line (not JSON, not an object, a field missing or mistyped, an id already
seen) raises `EvalSetError` naming the file and that line's 1-based number. So good lines are
kept exactly when the file has no bad one: the same file without its bad lines loads them all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragsys.eval.evalset import EvalItem, EvalSetError, GoldPage, load_eval_set, save_eval_set

PROFILE = settings.get_profile("property")

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
ITEM = st.builds(
    EvalItem,
    id=st.just(""),  # set from the line's position below, so ids are unique
    question=TEXT,
    split=st.sampled_from(["train", "dev", "test"]),
    answer=st.none() | TEXT,
    label=st.none() | st.sampled_from(["yes", "no", "maybe"]),
    gold_doc_ids=st.lists(TEXT, max_size=3).map(tuple),
    gold_pages=st.lists(st.builds(GoldPage, doc=TEXT, page=st.integers(1, 500)), max_size=2).map(tuple),
    answerable=st.booleans(),
    meta=st.dictionaries(TEXT, JSON_VALUE, max_size=3),
)
BAD = st.sampled_from(
    [
        "{not json",
        "[1, 2]",
        '"a string"',
        "NaN",
        '{"question": "no id", "split": "test"}',
        '{"id": 5, "question": "q", "split": "test"}',
        '{"id": "x", "question": "q", "split": "test", "gold_doc_ids": "not a list"}',
        '{"id": "x", "question": "q", "split": "test", "gold_pages": [{"doc": "d"}]}',
        "DUPLICATE",  # stands for a repeat of the first good line's id
    ]
)
BLANK = st.sampled_from(["", "   ", "\t"])
LINE = st.one_of(
    st.tuples(st.just("good"), ITEM), st.tuples(st.just("bad"), BAD), st.tuples(st.just("blank"), BLANK)
)


def render(lines: list[tuple[str, object]]) -> tuple[list[str], list[EvalItem], int | None]:
    """File lines, the good items in order, and the 1-based number of the first bad line."""
    out: list[str] = []
    good: list[EvalItem] = []
    first_bad: int | None = None
    for lineno, (kind, value) in enumerate(lines, start=1):
        if kind == "good" and isinstance(value, EvalItem):
            item = value.model_copy(update={"id": f"q{lineno}"})
            good.append(item)
            out.append(json.dumps(item.model_dump(mode="json", exclude_none=True), ensure_ascii=False))
            continue
        text = str(value)
        if text == "DUPLICATE":
            text = json.dumps({"id": good[0].id, "question": "again", "split": "test"}) if good else "{}"
        out.append(text)
        if kind == "bad" and first_bad is None:
            first_bad = lineno
    return out, good, first_bad


@settings(PROFILE, max_examples=60)
@given(lines=st.lists(LINE, max_size=8))
def test_the_first_bad_line_is_named_and_good_lines_load_in_order(lines: list[tuple[str, object]]) -> None:
    text, good, first_bad = render(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.jsonl"
        path.write_text("\n".join(text) + "\n", encoding="utf-8")
        if first_bad is None:
            assert load_eval_set(path) == good
        else:
            with pytest.raises(EvalSetError) as err:
                load_eval_set(path)
            assert str(err.value).startswith(f"{path}:{first_bad}: ")
        clean = Path(tmp) / "clean.jsonl"
        clean.write_text(
            "\n".join(t for t, (kind, _) in zip(text, lines, strict=True) if kind != "bad"), encoding="utf-8"
        )
        assert load_eval_set(clean) == good


@settings(PROFILE, max_examples=30)
@given(items=st.lists(ITEM, max_size=5))
def test_saved_items_load_back_unchanged(items: list[EvalItem]) -> None:
    items = [item.model_copy(update={"id": f"q{i}"}) for i, item in enumerate(items)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.jsonl"
        save_eval_set(items, path)
        assert load_eval_set(path) == items
