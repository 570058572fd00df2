from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragsys.eval.evalset import (
    EvalItem,
    EvalSetError,
    EvalSetReader,
    GoldPage,
    doc_matches,
    load_eval_set,
    save_eval_set,
)

ITEMS = [
    EvalItem(id="q1", question="Is it?", split="train", label="yes", gold_doc_ids=("d1",)),
    EvalItem(
        id="q2",
        question="Where?",
        split="test",
        answer="Here.",
        gold_doc_ids=("*AAPL*",),
        gold_chunk_ids=("c9",),
        gold_pages=(GoldPage(doc="2023 Q3 AAPL.pdf", page=4),),
        meta={"chunk_type": "Table"},
    ),
    EvalItem(id="q3", question="Who?", split="dev"),
]


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    save_eval_set(ITEMS, path)
    assert load_eval_set(path) == ITEMS


def test_saved_lines_leave_out_unset_optionals(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    save_eval_set(ITEMS[:1], path)
    obj = json.loads(path.read_text().splitlines()[0])
    assert "answer" not in obj and obj["gold_doc_ids"] == ["d1"] and obj["split"] == "train"


def test_split_filter_and_reader_records_requests(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    save_eval_set(ITEMS, path)
    reader = EvalSetReader(path)
    assert [i.id for i in reader.read({"train", "dev"})] == ["q1", "q3"]
    assert [i.id for i in reader.read()] == ["q1", "q2", "q3"]
    assert reader.requested_splits == [frozenset({"train", "dev"}), None]


def test_split_sizes_count_without_recording_a_read(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    save_eval_set(ITEMS, path)
    reader = EvalSetReader(path)
    assert reader.split_sizes() == {i.split: sum(j.split == i.split for j in ITEMS) for i in ITEMS}
    assert reader.requested_splits == []  # a count returns no item


def test_unknown_split_names_the_available_ones(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    save_eval_set(ITEMS, path)
    with pytest.raises(EvalSetError, match=r"no items in splits \['tset'\].*'test'"):
        load_eval_set(path, splits=["tset"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"id": "x", "split": "test"}', "question: Field required"),
        ('{"id": "x", "question": "q", "split": "test", "gold_docs": []}', "gold_docs: Extra inputs"),
        ('{"id": "x", "question": "q", "split": "test", "gold_pages": [{"doc": "a"}]}', "gold_pages.0.page"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "question": "q", "split": "test"}\n\n' + line + "\n")
    with pytest.raises(EvalSetError, match=rf"bad\.jsonl:3: .*{message}"):
        load_eval_set(path)


def test_duplicate_id_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    line = '{"id": "x", "question": "q", "split": "test"}\n'
    path.write_text(line + line)
    with pytest.raises(EvalSetError, match=r"dup\.jsonl:2: duplicate id 'x' \(first on line 1\)"):
        load_eval_set(path)


def test_missing_file_is_an_eval_set_error(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match="not found"):
        load_eval_set(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("gold", "doc_id", "expected"),
    [
        ("13734012", "13734012", True),
        ("1373401", "13734012", False),
        ("2023 Q3 AAPL.pdf", "/data/sec10q/docs/2023 Q3 AAPL.pdf", True),
        ("docs/2023 Q3 AAPL.pdf", "/data/sec10q/docs/2023 Q3 AAPL.pdf", True),
        ("Q3 AAPL.pdf", "/data/sec10q/docs/2023 Q3 AAPL.pdf", False),
        ("*AAPL*", "/data/sec10q/docs/2023 Q3 AAPL.pdf", True),
        ("*AAPL*", "/data/AAPL/2023 Q3 MSFT.pdf", False),  # only the basename is globbed
        ("*2023 Q3 AAPL*", "docs/2022 Q3 AAPL.pdf", False),
        ("*aapl*", "docs/2023 Q3 AAPL.pdf", False),  # case-sensitive on every OS
        ("docs/*AAPL*", "/x/docs/2023 Q3 AAPL.pdf", True),
    ],
)
def test_doc_matches(gold: str, doc_id: str, expected: bool) -> None:
    assert doc_matches(gold, doc_id) is expected
