"""Re-score the yes/no/maybe labels of saved `ragsys eval` runs with the rule label (the first
yes/no/maybe word of the answer's first sentence) instead of the constrained step they ran with.

The answers are greedy and saved in each run record, so this is exactly what
`ragsys eval --label-rule rule` would report, without generating again. With --baseline, each run
is compared with it on the questions both answered (paired randomization test, bootstrap CI).

    python eval/rescore_labels.py --eval-set runs/pubmedqa/pubmedqa.jsonl \
        --baseline runs/pubmedqa/eval/hybrid-e2e-test.json runs/pubmedqa/eval/sft-e2e-test.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ragsys.eval.answers import LABELS, label_accuracy_and_macro_f1, map_yes_no_maybe
from ragsys.eval.evalset import load_eval_set
from ragsys.eval.stats import (
    bootstrap_ci,
    bootstrap_macro_f1,
    paired_bootstrap_delta_ci,
    paired_macro_f1_delta,
    paired_randomization_test,
)

Labels = dict[str, tuple[str, str]]  # question id -> (rule label, constrained label)


def labels_of(path: Path) -> Labels:
    record = json.loads(path.read_text(encoding="utf-8"))
    return {q: (map_yes_no_maybe(a["answer"]), a.get("label", "")) for q, a in record["answers"].items()}


def summary(labels: Labels, gold: dict[str, str], which: int) -> dict[str, object]:
    ids = sorted(q for q in labels if q in gold)
    preds, golds = [labels[q][which] for q in ids], [gold[q] for q in ids]
    correct = [float(p == g) for p, g in zip(preds, golds, strict=True)]
    return {
        "n": len(ids),
        "accuracy": statistics.fmean(correct),
        "accuracy_ci95": list(bootstrap_ci(correct)),
        "macro_f1": label_accuracy_and_macro_f1(preds, golds, LABELS)[1],
        "macro_f1_ci95": list(bootstrap_macro_f1(preds, golds)),
        "counts": {lab: preds.count(lab) for lab in LABELS},
    }


def compare(
    run: Labels, base: Labels, gold: dict[str, str], which_run: int, which_base: int
) -> dict[str, float]:
    ids = sorted(set(run) & set(base) & set(gold))
    a = [float(run[q][which_run] == gold[q]) for q in ids]
    b = [float(base[q][which_base] == gold[q]) for q in ids]
    lo, hi = paired_bootstrap_delta_ci(a, b)
    f1 = paired_macro_f1_delta(
        [run[q][which_run] for q in ids], [base[q][which_base] for q in ids], [gold[q] for q in ids]
    )
    return {"n": len(ids), "delta": statistics.fmean(a) - statistics.fmean(b), "ci95_lo": lo, "ci95_hi": hi,
            "p_value": paired_randomization_test(a, b),
            "macro_f1_delta": f1[0], "macro_f1_ci95_lo": f1[1], "macro_f1_ci95_hi": f1[2],
            "baseline_on_these": summary({q: base[q] for q in ids}, gold, which_base)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--eval-set", type=Path, required=True)
    ap.add_argument("--baseline", type=Path)
    args = ap.parse_args()
    gold = {it.id: it.label for it in load_eval_set(args.eval_set, ["test"]) if it.label}
    base = labels_of(args.baseline) if args.baseline else None
    out: dict[str, object] = {}
    for path in args.runs:
        labels = labels_of(path)
        entry: dict[str, object] = {"rule": summary(labels, gold, 0), "constrained": summary(labels, gold, 1)}
        if base is not None:
            entry["rule_vs_baseline_constrained"] = compare(labels, base, gold, 0, 1)
            entry["rule_vs_baseline_rule"] = compare(labels, base, gold, 0, 0)
            entry["constrained_vs_baseline_constrained"] = compare(labels, base, gold, 1, 1)
        out[path.stem] = entry
    print(json.dumps(out))


if __name__ == "__main__":
    main()
