from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ragsys.eval.convert import (
    ConvertError,
    convert_beir,
    convert_pubmedqa,
    convert_sec10q,
    split_answer_sources,
    write_corpus_jsonl,
)
from ragsys.eval.evalset import doc_matches
from tests.fixtures.paths import SHARED_DATA


def _write_beir(folder: Path, train: str, test: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    queries = [{"_id": q, "text": f"claim {q}", "metadata": {}} for q in ["1", "2", "3", "4"]]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels" / "train.tsv").write_bytes(train.encode())
    (folder / "qrels" / "test.tsv").write_bytes(test.encode())
    return folder


def test_beir_splits_by_qrels_file_and_drops_unjudged_queries(tmp_path: Path) -> None:
    header = "query-id\tcorpus-id\tscore\r\n"
    folder = _write_beir(tmp_path, header + "1\td1\t1\r\n1\td2\t1\r\n", header + "3\td3\t1\r\n3\td4\t0\r\n")
    items = convert_beir(folder)
    assert [(i.id, i.split, i.gold_doc_ids) for i in items] == [
        ("1", "train", ("d1", "d2")),
        ("3", "test", ("d3",)),  # score 0 is judged non-relevant, not gold
    ]
    assert items[0].question == "claim 1" and items[0].meta == {}


def test_beir_keeps_grades_other_than_one(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path, "2\td1\t2\n2\td2\t1\n", "")  # no header, LF ends: also accepted
    (item,) = convert_beir(folder)
    assert item.meta == {"grades": {"d1": 2, "d2": 1}}


def test_beir_query_in_two_splits_is_an_error(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path, "1\td1\t1\n", "1\td2\t1\n")
    with pytest.raises(ConvertError, match="query '1' is also in qrels/test.tsv"):
        convert_beir(folder)


def test_beir_without_qrels_says_so(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "t"}\n')
    with pytest.raises(ConvertError, match="no \\*.tsv qrels files"):
        convert_beir(tmp_path)


def test_beir_bad_row_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path, "query-id\tcorpus-id\tscore\n1\td1\n", "")
    with pytest.raises(ConvertError, match=r"train\.tsv:2: expected 3"):
        convert_beir(folder)


def _write_pubmedqa(folder: Path) -> Path:
    (folder / "splits").mkdir(parents=True)
    records = {
        str(pmid): {
            "QUESTION": f"Q{pmid}?",
            "CONTEXTS": [f"Background {pmid}.", f"Methods {pmid}."],
            "LONG_ANSWER": f"Long {pmid}.",
            "final_decision": "yes" if pmid % 2 else "no",
            "YEAR": "2001",
        }
        for pmid in range(10, 20)
    }
    (folder / "ori_pqal.json").write_text(json.dumps(records))
    (folder / "splits" / "trainval_pmids.txt").write_text("\n".join(str(p) for p in range(10, 16)) + "\n")
    (folder / "splits" / "test_pmids.txt").write_text("\n".join(str(p) for p in range(16, 20)) + "\n")
    return folder


def test_pubmedqa_items_and_corpus(tmp_path: Path) -> None:
    items, corpus = convert_pubmedqa(_write_pubmedqa(tmp_path))
    assert Counter(i.split for i in items) == {"train": 6, "test": 4}
    first = items[0]
    assert (first.id, first.question, first.answer, first.label, first.gold_doc_ids) == (
        "10",
        "Q10?",
        "Long 10.",
        "no",
        ("10",),
    )
    assert corpus[0] == {"_id": "10", "title": "", "text": "Background 10. Methods 10."}
    assert len(corpus) == 10  # test abstracts are in the corpus too


def test_pubmedqa_dev_fraction_is_seeded_and_only_from_trainval(tmp_path: Path) -> None:
    folder = _write_pubmedqa(tmp_path)
    a, _ = convert_pubmedqa(folder, dev_fraction=0.5, seed=3)
    b, _ = convert_pubmedqa(folder, dev_fraction=0.5, seed=3)
    assert [i.split for i in a] == [i.split for i in b]
    assert Counter(i.split for i in a) == {"train": 3, "dev": 3, "test": 4}
    assert all(i.split == "test" for i in a if int(i.id) >= 16)


_SEC_HEADER = "Question,Source Docs,Question Type,Source Chunk Type,Answer\r\n"


def test_sec10q_globs_meta_and_stratified_split(tmp_path: Path) -> None:
    answer = '"A{}.\n\nSOURCE(S): 2023 Q3 AAPL.pdf"'  # a quoted multi-line field, as in the real file
    rows = [
        f"Q{i}?,*2023 Q3 AAPL*,Multi-Doc RAG,{'Table' if i < 10 else 'Text'},{answer.format(i)}\r\n"
        for i in range(15)
    ]
    (tmp_path / "qna_data.csv").write_bytes(("\ufeff" + _SEC_HEADER + "".join(rows)).encode("utf-8"))
    items = convert_sec10q(tmp_path, train_fraction=0.6, seed=0)
    assert items[0].id == "sec10q-000" and items[0].gold_doc_ids == ("*2023 Q3 AAPL*",)
    assert items[0].answer == "A0." and items[0].meta["answer_sources"] == "2023 Q3 AAPL.pdf"
    assert items[0].meta["question_type"] == "Multi-Doc RAG"
    by_type = Counter((i.meta["chunk_type"], i.split) for i in items)
    assert by_type == {("Table", "train"): 6, ("Table", "test"): 4, ("Text", "train"): 3, ("Text", "test"): 2}
    assert [i.split for i in convert_sec10q(tmp_path, seed=0)] == [i.split for i in items]


def test_sec10q_missing_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "qna_data.csv").write_text("Question,Answer\nq,a\n")
    with pytest.raises(ConvertError, match="missing columns.*Source Docs"):
        convert_sec10q(tmp_path)


def test_split_answer_sources_leaves_answers_without_a_sources_line() -> None:
    assert split_answer_sources("Yes.\n  SOURCE(S): a.pdf, b.pdf") == ("Yes.", "a.pdf, b.pdf")
    assert split_answer_sources(" No sources here. ") == ("No sources here.", "")


def test_write_corpus_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "corpus.jsonl"
    write_corpus_jsonl([{"_id": "1", "text": "café"}], path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"_id": "1", "title": "", "text": "café"}


def _need(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (clone the repo beside shared/data)")
    return path


@pytest.mark.slow
def test_real_scifact_counts() -> None:
    items = convert_beir(_need("scifact"))
    assert Counter(i.split for i in items) == {"train": 809, "test": 300}
    assert sum(len(i.gold_doc_ids) for i in items) == 919 + 339


@pytest.mark.slow
def test_real_pubmedqa_counts() -> None:
    items, corpus = convert_pubmedqa(_need("pubmedqa"))
    assert Counter(i.split for i in items) == {"train": 500, "test": 500}
    assert len(corpus) == 1000 and {i.label for i in items} == {"yes", "no", "maybe"}


@pytest.mark.slow
def test_real_sec10q_counts() -> None:
    items = convert_sec10q(_need("sec10q"))
    assert len(items) == 195
    assert Counter(i.meta["chunk_type"] for i in items) == {"Table": 114, "Text": 81}
    assert Counter(i.split for i in items) == {"train": 117, "test": 78}
    docs = [p.name for p in (SHARED_DATA / "sec10q" / "docs").glob("*.pdf")]
    assert all(any(doc_matches(g, d) for d in docs) for i in items for g in i.gold_doc_ids)
