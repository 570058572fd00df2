"""Is there label signal left for `ragsys tune` to find on PubMedQA? The label step's raw option
scores on train questions, judged the way the keep rule judges, with cross-fitting.

The labels stage (`ragsys.train.labels`) fits one offset per label; the context stage picks how
many passages the generator reads. Both change no weights, so each can be judged on every
train question it did not fit on: the shipped default answers the first `--limit` trainval
questions once per passage count (label offsets off), and then

* calibration, cross-fitted: for each of k folds the offsets (or a multinomial logistic
  regression on the three option scores, plain or class-balanced) are fitted on the other
  folds and the held-out fold is labelled with them;
* one passage against three: the same questions, the labels as answered;

each compared with the raw labels on label macro-F1 by the keep rule's paired permutation test
(`ragsys.tune.decide.decide_labels`), which also states the smallest gain it could detect.
The official test split is never read.

    python eval/pubmedqa_label_signal.py --eval-set runs/pubmedqa/pubmedqa.jsonl \
        --index runs/pubmedqa/index --limit 210 --out runs/pubmedqa/label-signal

Answers are appended to OUT/rows-k{K}.jsonl as they come (a rerun resumes); the JSON summary is
the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ragsys.eval.evalset import EvalItem, load_eval_set
from ragsys.eval.retrieval import search_items
from ragsys.index.reader import Index
from ragsys.pipeline import default_pipeline
from ragsys.train.labels import fit_label_bias, predict
from ragsys.tune.crossfit import fold_ids
from ragsys.tune.decide import decide_labels

OPTIONS = ["yes", "no", "maybe"]
Row = dict[str, Any]


def answer_rows(items: list[EvalItem], index: Path, k: int, out: Path) -> dict[str, Row]:
    """The shipped default's answer, chosen label and raw option scores per question, `k` passages."""
    done = {r["id"]: r for r in map(json.loads, out.open(encoding="utf-8"))} if out.exists() else {}
    todo = [it for it in items if it.id not in done]
    if todo:
        config = default_pipeline()
        assert config.generator is not None
        config = config.with_generator("raw", label_bias=(), max_new_tokens=48)
        generator = config.generator.build()  # type: ignore[union-attr]
        hits = search_items(config.build(Index.open(index)), todo, depth=k)
        t0 = time.monotonic()
        with out.open("a", encoding="utf-8") as f:
            for i, (item, found) in enumerate(zip(todo, hits, strict=True), start=1):
                answer = generator.generate(item.question, list(found[:k]))
                label, scores = generator.choose(answer, OPTIONS)
                row = {"id": item.id, "gold": item.label, "label": label, "scores": scores}
                f.write(json.dumps(row) + "\n")
                f.flush()
                done[item.id] = row
                if i % 10 == 0 or i == len(todo):
                    print(f"{k} passages: {i}/{len(todo)} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return {it.id: done[it.id] for it in items}


def crossfit(rows: dict[str, Row], items: list[EvalItem], folds: int, method: str) -> dict[str, str]:
    """Each question labelled by a calibration fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression  # sentence-transformers' own dependency

    ids = list(rows)
    scores = np.array([rows[i]["scores"] for i in ids], dtype=np.float64)
    gold = np.array([OPTIONS.index(rows[i]["gold"]) for i in ids])
    position = {q: n for n, q in enumerate(ids)}
    out: dict[str, str] = {}
    for fold in fold_ids(items, folds, seed=0):
        held = [position[q] for q in fold]
        fit = sorted(set(range(len(ids))) - set(held))
        if method == "offsets":
            bias = np.array(
                [b for _, b in fit_label_bias(scores[fit], [OPTIONS[g] for g in gold[fit]], OPTIONS)]
            )
            chosen = predict(scores[held], bias)
        else:
            x = scores - scores.max(axis=1, keepdims=True)
            balanced = "balanced" if method == "logistic-balanced" else None
            chosen = (
                LogisticRegression(class_weight=balanced, max_iter=1000)
                .fit(x[fit], gold[fit])
                .predict(x[held])
            )
        out.update({ids[h]: OPTIONS[int(c)] for h, c in zip(held, chosen, strict=True)})
    return out


def judged(before: dict[str, str], after: dict[str, str], gold: dict[str, str]) -> dict[str, Any]:
    d = decide_labels(before, after, gold)
    return {"before": d.before, "after": d.after, "delta": d.delta, "p_value": d.p_value, "mde": d.mde,
            "reason": d.reason}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval-set", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=210, help="trainval questions answered (in file order)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    items = [it for it in load_eval_set(args.eval_set) if it.split != "test" and it.label in OPTIONS][
        : args.limit
    ]
    three = answer_rows(items, args.index, 3, args.out / "rows-k3.jsonl")
    one = answer_rows(items, args.index, 1, args.out / "rows-k1.jsonl")
    gold = {q: r["gold"] for q, r in three.items()}
    raw = {q: r["label"] for q, r in three.items()}
    summary: dict[str, Any] = {"questions": len(items), "folds": args.folds}
    for method in ("offsets", "logistic", "logistic-balanced"):
        summary[f"calibration-{method}"] = judged(raw, crossfit(three, items, args.folds, method), gold)
    summary["one-passage-vs-three"] = judged(raw, {q: r["label"] for q, r in one.items()}, gold)
    for name, result in summary.items():
        if isinstance(result, dict):
            print(f"{name}: {result['reason']}", file=sys.stderr)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
