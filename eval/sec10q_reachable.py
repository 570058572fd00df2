"""How high can `numeric_match` go over a pipeline's retrieval? A perfect reader's ceiling.

`numeric_match` needs every figure of the reference in the answer. A reader, however good,
can state only figures its passages state (or invent them), so the share of numeric questions
whose top-k passages state *every* reference figure bounds what any generator can reach with
k passages. This prints that share for several k, split by how many figures the reference
states, for the passages as retrieved and for passages taken one per document first (do the
misses come from several filings that retrieval does not spread over?).

    python eval/sec10q_reachable.py --pipeline runs/sec10q/tune-folds60c \
        --index runs/sec10q/tune-folds60c/stages/02-retriever/index --eval-set runs/sec10q/sec10q.jsonl \
        --splits train                     # the non-test questions; --splits test to report

The JSON summary is the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ragsys.eval.evalset import load_eval_set
from ragsys.eval.evidence import figure_recall
from ragsys.eval.numbers import figures
from ragsys.eval.retrieval import search_items
from ragsys.index.reader import Index
from ragsys.pipeline import load_pipeline
from ragsys.types import Hit

KS = (1, 3, 5, 10)
GROUPS = {"1 figure": (1, 1), "2-3 figures": (2, 3), "4+ figures": (4, 10**9)}


def one_per_document(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The best hit of each document in rank order, then the rest in rank order, `k` in all."""
    first: list[Hit] = []
    seen: set[str] = set()
    for h in hits:
        if h.chunk.doc_id not in seen:
            first.append(h)
            seen.add(h.chunk.doc_id)
    rest = [h for h in hits if h not in first]
    return (first + rest)[:k]


def _all_stated(reference: str, hits: Sequence[Hit]) -> bool:
    return figure_recall(reference, [h.chunk.text for h in hits]) == 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--eval-set", required=True)
    ap.add_argument("--splits", default="train", help="comma-separated splits to read")
    args = ap.parse_args()
    items = [
        it for it in load_eval_set(args.eval_set, set(args.splits.split(","))) if figures(it.answer or "")
    ]
    index = Index.open(Path(args.index))
    found = search_items(load_pipeline(args.pipeline).build(index), items, depth=max(KS))
    summary: dict[str, object] = {"questions": len(items), "splits": args.splits}
    for order, pick in (("retrieved", lambda hs, k: list(hs[:k])), ("one per document", one_per_document)):
        for k in KS:
            row: dict[str, object] = {}
            for group, (lo, hi) in {"all": (1, 10**9), **GROUPS}.items():
                chosen = [(it, hs) for it, hs in zip(items, found, strict=True)
                          if lo <= len(figures(it.answer or "")) <= hi]  # fmt: skip
                full = sum(_all_stated(it.answer or "", pick(hs, k)) for it, hs in chosen)
                row[group] = f"{full}/{len(chosen)}"
            summary[f"{order}, k={k}"] = row
            print(f"{order:>17}  k={k:<2}  every reference figure stated: {row}", flush=True)
    index.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
