"""Judge a decoding setting on a `ragsys tune --folds` run's fold models, before any test question.

A decoding setting (`no_repeat_ngram`, `figures`, `max_new_tokens`, ...) changes no weights, so it
is chosen the way `ragsys tune` judges a stage: each non-test question is answered by the fold
model that never trained on it, with the pipeline as tuned and with the setting changed, and the
two are compared question by question as `ragsys eval --baseline` compares runs (`current`: the
setting changed; `baseline`: as tuned), with the same passages (`answer_k`) and the same scorer
`ragsys tune` uses. The test split is never read.

    python eval/decoding_dev.py --tune runs/sec10q/tune-folds-sft --stage 01-generator \
        --set no_repeat_ngram=16 --out runs/sec10q/dev/no-repeat-16.json
    python eval/decoding_dev.py --tune runs/sec10q/tune-folds-sft --stage 01-generator \
        --base attribution=scored --set citations=figures   # both sides with a setting changed first
    python eval/decoding_dev.py --pipeline pipelines/hybrid.py --index runs/sec10q/index \
        --eval-set runs/sec10q/sec10q.jsonl --set attribution=scored   # an untuned pipeline

Prints progress on stderr and the JSON summary as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragsys.eval.evalset import EvalItem, EvalSetReader
from ragsys.eval.report import compare_runs
from ragsys.eval.split import non_test_items
from ragsys.generate.config import GeneratorConfig
from ragsys.pipeline import PipelineConfig, load_pipeline
from ragsys.tune.scoring import Scorer

METRICS = (
    "no_citation_rate", "citation_precision", "cited_figure_support", "figure_f1", "numeric_match",
    "token_f1", "abstained",
)  # fmt: skip


def overridden(config: PipelineConfig, settings: dict[str, str]) -> PipelineConfig:
    """`config` with its generator's settings replaced (validated, so "16" becomes 16)."""
    if config.generator is None:
        raise SystemExit("the stage's pipeline has no generator: nothing to decode")
    try:
        generator = GeneratorConfig.model_validate(config.generator.model_dump() | settings)
    except ValidationError as e:
        raise SystemExit(f"--set {settings}: not a valid GeneratorConfig:\n{e}") from None
    return config.model_copy(update={"generator": generator})


def parse_settings(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: write FIELD=VALUE, e.g. no_repeat_ngram=16")
        out[key.strip()] = value.strip()
    return out


def compare(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The paired comparison `ragsys eval --baseline` makes, for the decoding metrics."""
    metrics = compare_runs({"per_query": after}, {"per_query": before})["metrics"]
    return {m: metrics[m] for m in METRICS if m in metrics}


Run = tuple[PipelineConfig, Path, list[EvalItem]]  # a pipeline, its index, the questions it never trained on


def fold_runs(tune: Path, stage: str) -> list[Run]:
    """Each fold model of a `ragsys tune --folds` stage, with the questions it was judged on."""
    state = json.loads((tune / "tune-state.json").read_text(encoding="utf-8"))
    if not state.get("folds"):
        raise SystemExit(f"{tune} was not tuned with --folds: no fold models to judge with")
    items = {it.id: it for it in non_test_items(EvalSetReader(state["eval_set"]))}
    index = Path(state["current_index"])
    return [
        (PipelineConfig.load(tune / "stages" / stage / f"fold-{n}"), index, [items[q] for q in ids])
        for n, ids in enumerate(state["folds"], start=1)
    ]


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tune", type=Path, help="a `ragsys tune --folds` output folder (its fold models)")
    ap.add_argument("--stage", help="with --tune: the stage folder under stages/, e.g. 01-generator")
    ap.add_argument("--pipeline", type=Path, help="or a pipeline that trained on no question of --eval-set")
    ap.add_argument("--index", type=Path, help="with --pipeline: its index")
    ap.add_argument("--eval-set", type=Path, help="with --pipeline: its non-test questions are answered")
    ap.add_argument("--set", dest="settings", action="append", default=[], help="GeneratorConfig FIELD=VALUE")
    ap.add_argument(
        "--base", action="append", default=[],
        help="FIELD=VALUE set on both sides first (a pipeline saved before a default changed)",
    )  # fmt: skip
    ap.add_argument("--answer-k", type=int, default=3, help="passages the generator gets (tune's default)")
    ap.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = ap.parse_args()
    if (args.tune is None) == (args.pipeline is None):
        ap.error("give --tune with --stage, or --pipeline with --index and --eval-set")
    if args.tune is not None and args.stage is None:
        ap.error("--tune needs --stage")
    if args.pipeline is not None and (args.index is None or args.eval_set is None):
        ap.error("--pipeline needs --index and --eval-set")
    return args


def main() -> None:
    args = arguments()
    settings, base = parse_settings(args.settings), parse_settings(args.base)
    if args.tune is not None:
        runs = fold_runs(args.tune, args.stage)
    else:
        runs = [(load_pipeline(args.pipeline), args.index, non_test_items(EvalSetReader(args.eval_set)))]
    scorer = Scorer(args.answer_k)
    before: dict[str, dict[str, float]] = {}
    after: dict[str, dict[str, float]] = {}
    texts: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    t0 = time.monotonic()
    for number, (saved, index, held) in enumerate(runs, start=1):
        config = overridden(saved, base) if base else saved
        changed = overridden(config, settings)
        for name, candidate, sink in (("before", config, before), ("after", changed, after)):
            elapsed = time.monotonic() - t0
            print(f"run {number}/{len(runs)}: {len(held)} answers, {name} ({elapsed:.0f} s)", file=sys.stderr)
            metrics, extra = scorer.answered(candidate, index, held)
            sink.update(metrics)
            texts[name].update({q: str(a["answer"]) for q, a in extra["answers"].items()})
    scorer.close()
    judged = {"tune": str(args.tune), "stage": args.stage} if args.tune else {"pipeline": str(args.pipeline)}
    summary = judged | {
        "settings": settings,
        "base": base,
        "answer_k": args.answer_k,
        "questions": len(before),
        "minutes": (time.monotonic() - t0) / 60,
        "metrics": compare(before, after),
    }
    if args.out is not None:
        record = summary | {"answers": texts, "per_query": {"before": before, "after": after}}
        args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
