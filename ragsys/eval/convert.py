"""Converters from published datasets to the eval-set format (`ragsys.eval.evalset`).

Each reads the dataset as it is published (see /work/shared/data/README.md) and
returns items, plus BEIR-format corpus rows where the corpus is not already a file
the indexer can read. Splits follow the dataset's own where it has them; where it
has none (SEC 10-Q) the rule is seeded and documented on the function.

Example::

    items, corpus = convert_pubmedqa(Path("../shared/data/pubmedqa"))
    save_eval_set(items, "data/pubmedqa.jsonl")
    write_corpus_jsonl(corpus, "data/pubmedqa-corpus.jsonl")
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragsys.eval.evalset import EvalItem

CorpusRow = dict[str, str]  # BEIR corpus line: {"_id", "title", "text"}


class ConvertError(ValueError):
    """A dataset file that does not look as published; the message names file and line."""


# --- BEIR -------------------------------------------------------------------------------


def convert_beir(folder: str | Path) -> list[EvalItem]:
    """Queries with qrels, split by the qrels file they appear in (`qrels/test.tsv` -> "test").

    Only rows with score > 0 become gold ids; grades other than 1 are kept in
    `meta["grades"]` so graded nDCG stays exact. Queries with no qrels row are dropped:
    nothing can score them. A query in two qrels files is an error (it would leak).
    """
    folder = Path(folder)
    queries = _read_beir_queries(folder / "queries.jsonl")
    tsvs = sorted((folder / "qrels").glob("*.tsv"))
    if not tsvs:
        raise ConvertError(f"{folder / 'qrels'}: no *.tsv qrels files; is {folder} a BEIR dataset folder?")
    split_of: dict[str, str] = {}
    grades: dict[str, dict[str, int]] = {}
    for tsv in tsvs:
        for qid, doc_id, score in _read_qrels_tsv(tsv):
            if split_of.setdefault(qid, tsv.stem) != tsv.stem:
                raise ConvertError(f"{tsv}: query {qid!r} is also in qrels/{split_of[qid]}.tsv")
            if qid not in queries:
                raise ConvertError(f"{tsv}: query {qid!r} has qrels but is not in queries.jsonl")
            if score > 0:
                grades.setdefault(qid, {})[doc_id] = score
    return [
        _beir_item(qid, text, split_of[qid], grades.get(qid, {}))
        for qid, text in queries.items()
        if qid in split_of
    ]


def _beir_item(qid: str, text: str, split: str, grades: dict[str, int]) -> EvalItem:
    meta: dict[str, Any] = {"grades": grades} if any(g != 1 for g in grades.values()) else {}
    return EvalItem(id=qid, question=text, split=split, gold_doc_ids=tuple(grades), meta=meta)


def _read_beir_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries[str(row["_id"])] = str(row["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ConvertError(f"{path}:{lineno}: expected a JSON object with _id and text ({e})") from e
    return queries


def _read_qrels_tsv(path: Path) -> list[tuple[str, str, int]]:
    """Rows of a BEIR qrels file; the header is optional and CRLF line ends are fine."""
    rows: list[tuple[str, str, int]] = []
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""] or (lineno == 1 and fields[0] == "query-id"):
                continue
            if len(fields) != 3:
                raise ConvertError(f"{path}:{lineno}: expected 3 tab-separated fields, got {len(fields)}")
            try:
                rows.append((fields[0], fields[1], int(fields[2])))
            except ValueError as e:
                raise ConvertError(f"{path}:{lineno}: score {fields[2]!r} is not an integer") from e
    return rows


# --- PubMedQA ---------------------------------------------------------------------------


def convert_pubmedqa(
    folder: str | Path, dev_fraction: float = 0.0, seed: int = 0
) -> tuple[list[EvalItem], list[CorpusRow]]:
    """PQA-L: trainval PMIDs -> "train" (a seeded `dev_fraction` of them -> "dev"), test -> "test".

    The corpus is every labelled abstract (1,000), test ones included: retrieval must
    find the right abstract among all of them. Each question's gold is its own PMID.
    """
    folder = Path(folder)
    raw = _read_json_object(folder / "ori_pqal.json")
    split_of = _pubmedqa_splits(folder / "splits", dev_fraction, seed)
    items: list[EvalItem] = []
    corpus: list[CorpusRow] = []
    for pmid, rec in raw.items():
        try:
            corpus.append({"_id": pmid, "title": "", "text": " ".join(rec["CONTEXTS"])})
            if pmid in split_of:
                items.append(_pubmedqa_item(pmid, rec, split_of[pmid]))
        except (KeyError, TypeError) as e:
            raise ConvertError(f"{folder / 'ori_pqal.json'}: PMID {pmid}: missing or bad field {e}") from e
    missing = sorted(set(split_of) - set(raw))
    if missing:
        raise ConvertError(
            f"{folder / 'splits'}: {len(missing)} PMIDs not in ori_pqal.json, e.g. {missing[:3]}"
        )
    return items, corpus


def _pubmedqa_item(pmid: str, rec: Mapping[str, Any], split: str) -> EvalItem:
    return EvalItem(
        id=pmid,
        question=rec["QUESTION"],
        split=split,
        answer=rec["LONG_ANSWER"],
        label=rec["final_decision"],
        gold_doc_ids=(pmid,),
        meta={"year": rec.get("YEAR", "")},
    )


def _pubmedqa_splits(splits_dir: Path, dev_fraction: float, seed: int) -> dict[str, str]:
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    trainval = _read_ids(splits_dir / "trainval_pmids.txt")
    test = _read_ids(splits_dir / "test_pmids.txt")
    dev = set(_seeded_take(trainval, round(dev_fraction * len(trainval)), seed))
    split_of = {pmid: ("dev" if pmid in dev else "train") for pmid in trainval}
    for pmid in test:
        if pmid in split_of:
            raise ConvertError(f"{splits_dir}: PMID {pmid} is in both trainval and test")
        split_of[pmid] = "test"
    return split_of


def _read_ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConvertError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a JSON object keyed by id")
    return obj


# --- SEC 10-Q ---------------------------------------------------------------------------

_SEC_COLUMNS = ("Question", "Source Docs", "Question Type", "Source Chunk Type", "Answer")


def convert_sec10q(folder: str | Path, train_fraction: float = 0.6, seed: int = 0) -> list[EvalItem]:
    """Docugami SEC 10-Q QA pairs; ids are `sec10q-NNN` (0-based row in qna_data.csv).

    The dataset has no split. Rule: within each Source Chunk Type (Table, Text), ids are
    shuffled with `random.Random(seed)` and the first round(train_fraction * n) go to
    "train", the rest to "test", so both splits keep the table/text mix. Gold ids are
    the Source Docs globs (matched by `doc_matches`). The trailing "SOURCE(S): ..." line
    of an answer names the evidence, not the answer, so it moves to `meta["answer_sources"]`.
    """
    rows = _read_sec_rows(Path(folder) / "qna_data.csv")
    ids = [f"sec10q-{i:03d}" for i in range(len(rows))]
    split_of = _stratified_split(ids, [r["Source Chunk Type"] for r in rows], train_fraction, seed)
    return [_sec_item(i, r, split_of[i]) for i, r in zip(ids, rows, strict=True)]


def _read_sec_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _SEC_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConvertError(f"{path}:1: missing columns {missing}; header is {reader.fieldnames}")
        return [dict(row) for row in reader]


def _sec_item(item_id: str, row: Mapping[str, str], split: str) -> EvalItem:
    answer, sources = split_answer_sources(row["Answer"])
    globs = tuple(g.strip() for g in row["Source Docs"].split(",") if g.strip())
    meta: dict[str, Any] = {"question_type": row["Question Type"], "chunk_type": row["Source Chunk Type"]}
    if sources:
        meta["answer_sources"] = sources
    return EvalItem(
        id=item_id,
        question=row["Question"].strip(),
        split=split,
        answer=answer,
        gold_doc_ids=globs,
        meta=meta,
    )


def split_answer_sources(answer: str) -> tuple[str, str]:
    """("answer without its last 'SOURCE(S): ...' line", "what followed the colon")."""
    lines = answer.strip().splitlines()
    if lines and lines[-1].strip().startswith("SOURCE(S):"):
        return "\n".join(lines[:-1]).strip(), lines[-1].split(":", 1)[1].strip()
    return answer.strip(), ""


def _stratified_split(
    ids: Sequence[str], strata: Sequence[str], train_fraction: float, seed: int
) -> dict[str, str]:
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    split_of: dict[str, str] = {}
    for stratum in sorted(set(strata)):
        members = [i for i, s in zip(ids, strata, strict=True) if s == stratum]
        train = set(_seeded_take(members, round(train_fraction * len(members)), seed))
        split_of.update({i: ("train" if i in train else "test") for i in members})
    return split_of


def _seeded_take(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """n ids chosen by a seeded shuffle of the sorted ids (input order does not matter)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return order[:n]


# --- writing ----------------------------------------------------------------------------


def write_corpus_jsonl(rows: Iterable[Mapping[str, str]], path: str | Path) -> None:
    """BEIR corpus format, one `{"_id", "title", "text"}` object per line."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(
                json.dumps(
                    {"_id": row["_id"], "title": row.get("title", ""), "text": row["text"]},
                    ensure_ascii=False,
                )
            )
            f.write("\n")


def convert_dataset(kind: str, source: Path, seed: int = 0) -> tuple[list[EvalItem], list[CorpusRow] | None]:
    """`ragsys convert KIND SOURCE`: the eval set, and corpus rows where the dataset has no
    corpus file the indexer can read (PubMedQA); None for the others."""
    if kind == "beir":
        return convert_beir(source), None
    if kind == "pubmedqa":
        return convert_pubmedqa(source, seed=seed)
    if kind == "sec10q":
        return convert_sec10q(source, seed=seed), None
    if kind == "unanswerable":
        from ragsys.eval.evalset import load_eval_set

        return with_unanswerable(load_eval_set(source)), None
    raise ConvertError(f"unknown dataset kind {kind!r}: choose beir, pubmedqa, sec10q or unanswerable")


UNANSWERABLE_SUFFIX = "~unanswerable"


def with_unanswerable(items: Sequence[EvalItem]) -> list[EvalItem]:
    """The items, each followed by an unanswerable twin where it names gold documents: the same
    question, searched without those documents (`exclude_doc_ids`), so no passage holds its
    answer and the right reply is to abstain. Both keep the original's split."""
    out: list[EvalItem] = []
    for item in items:
        out.append(item)
        if item.gold_doc_ids and item.answerable:
            out.append(
                EvalItem(
                    id=item.id + UNANSWERABLE_SUFFIX, question=item.question, split=item.split,
                    answerable=False, exclude_doc_ids=item.gold_doc_ids, meta={"twin_of": item.id},
                )
            )  # fmt: skip
    return out
