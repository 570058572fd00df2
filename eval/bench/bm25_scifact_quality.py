"""SciFact retrieval quality of ragsys BM25 over tokenizer options, variants, k1 and b.

    .venv/bin/python eval/bench/bm25_scifact_quality.py [--data DIR]

Every setting is scored on the *train* qrels (809 queries), and the one with the best
train nDCG@10 is the default; *test* (300 queries) is reported for it and for the
alternatives, never used to choose. Docs are indexed as title + " " + text. A query with no
hit counts as 0. Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ir_measures
from ir_measures import RR, R, nDCG

from ragsys.retrieve.bm25 import BM25Config, BM25Scorer
from ragsys.retrieve.bm25_index import BM25Index
from ragsys.retrieve.tokenize import Tokenizer, TokenizerConfig

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"
MEASURES = [nDCG @ 10, R @ 100, RR @ 10]
TOKENIZERS: dict[str, TokenizerConfig] = {
    "plain": TokenizerConfig(stopwords="none", stemmer="none", min_token_len=1),
    "stop": TokenizerConfig(stopwords="en", stemmer="none", min_token_len=1),
    "stem": TokenizerConfig(stopwords="none", stemmer="english", min_token_len=1),
    "stop+stem": TokenizerConfig(stopwords="en", stemmer="english", min_token_len=1),
    "stop+stem,min2": TokenizerConfig(stopwords="en", stemmer="english", min_token_len=2),
    "stop+stem,no_underscore": TokenizerConfig(
        pattern=r"[^\W_]+", stopwords="en", stemmer="english", min_token_len=1
    ),
    "stop+stem,hyphenated": TokenizerConfig(
        pattern=r"\w+(?:-\w+)*", stopwords="en", stemmer="english", min_token_len=1
    ),
}
VARIANTS = ("okapi", "lucene", "bm25+")
K1S = (0.6, 0.9, 1.2, 1.5, 2.0)
BS = (0.5, 0.75, 0.9, 1.0)
Qrels = dict[str, dict[str, int]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_qrels(path: Path) -> Qrels:
    qrels: Qrels = defaultdict(dict)
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels[row["query-id"].strip()][row["corpus-id"].strip()] = int(row["score"])
    return dict(qrels)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def evaluate(
    scorer: BM25Scorer, queries: dict[str, list[str]], qrels: Qrels, doc_ids: Sequence[str]
) -> dict[str, float]:
    """Mean over every judged query; one with no retrieved doc scores 0 on each measure."""
    ids = list(qrels)
    run = [
        ir_measures.ScoredDoc(qid, doc_ids[row], float(score))
        for qid, (scores, rows) in zip(ids, scorer.search_many([queries[q] for q in ids], 100), strict=True)
        for score, row in zip(scores.tolist(), rows.tolist(), strict=True)
    ]
    qrel_rows = [ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()]
    totals: dict[str, float] = defaultdict(float)
    for metric in ir_measures.iter_calc(MEASURES, qrel_rows, run):
        totals[str(metric.measure)] += metric.value
    return {name: round(totals[name] / len(ids), 4) for name in map(str, MEASURES)}


class SciFact:
    """The corpus, queries and qrels, plus one index per tokenizer (built on first use)."""

    def __init__(self, data: Path) -> None:
        self.corpus = read_jsonl(data / "corpus.jsonl")
        self.doc_ids = [d["_id"] for d in self.corpus]
        self.queries = {q["_id"]: q["text"] for q in read_jsonl(data / "queries.jsonl")}
        self.qrels = {s: read_qrels(data / "qrels" / f"{s}.tsv") for s in ("train", "test")}
        self._built: dict[str, tuple[BM25Index, dict[str, list[str]]]] = {}

    def score(self, row: dict[str, Any], split: str) -> dict[str, float]:
        if row["tokenizer"] not in self._built:
            tokenizer = Tokenizer(TOKENIZERS[row["tokenizer"]])
            texts = (d["title"] + " " + d["text"] for d in self.corpus)
            index = BM25Index.build(tokenizer.tokenize_many(texts))
            self._built[row["tokenizer"]] = index, {q: tokenizer.tokenize(t) for q, t in self.queries.items()}
        index, tokens = self._built[row["tokenizer"]]
        config = BM25Config(
            variant=row["variant"], k1=row["k1"], b=row["b"], tokenizer=TOKENIZERS[row["tokenizer"]]
        )
        scores = evaluate(config.build_scorer(index), tokens, self.qrels[split], self.doc_ids)
        return {f"{split}_{m}": v for m, v in scores.items()}


def sweep(data: SciFact) -> list[dict[str, Any]]:
    """Every setting on train; test is added later only for the rows that get reported."""
    rows: list[dict[str, Any]] = []
    for name in TOKENIZERS:
        for variant in VARIANTS:
            for k1 in K1S:
                for b in BS:
                    row: dict[str, Any] = {"tokenizer": name, "variant": variant, "k1": k1, "b": b}
                    rows.append(row | data.score(row, "train"))
        best = max((r for r in rows if r["tokenizer"] == name), key=lambda r: r["train_nDCG@10"])
        log(
            f"{name:24s} best on train: {best['variant']} k1={best['k1']} b={best['b']} "
            f"nDCG@10 {best['train_nDCG@10']:.4f}"
        )
    return rows


def best(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    """The row with the highest train nDCG@10 among those matching every given field."""
    return max(
        (r for r in rows if all(r[k] == v for k, v in match.items())), key=lambda r: r["train_nDCG@10"]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {args.data}: pass --data DIR (the folder with corpus.jsonl)")
    data = SciFact(args.data)
    rows = sweep(data)
    default = BM25Config()
    default_name = next(n for n, t in TOKENIZERS.items() if t == default.tokenizer)
    report: dict[str, Any] = {
        "chosen_on_train": best(rows),
        "ragsys_default": best(
            rows, tokenizer=default_name, variant=default.variant, k1=default.k1, b=default.b
        ),
        "plain_okapi_k1_1.5_b_0.75": best(rows, tokenizer="plain", variant="okapi", k1=1.5, b=0.75),
        "plain_lucene_k1_1.5_b_0.75": best(rows, tokenizer="plain", variant="lucene", k1=1.5, b=0.75),
        **{f"best_{name}": best(rows, tokenizer=name) for name in TOKENIZERS},
        **{f"best_{v}_{default_name}": best(rows, tokenizer=default_name, variant=v) for v in VARIANTS},
    }
    for key, row in report.items():
        row.update(data.score(row, "test"))
        log(
            f"{key:36s} {row['variant']:6s} k1={row['k1']} b={row['b']}  "
            f"train {row['train_nDCG@10']:.4f}  test {row['test_nDCG@10']:.4f}"
        )
    report.update(settings=len(rows), split_used_to_choose="train", reported_split="test")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
