#!/usr/bin/env bash
# The 10-Q filings end to end (issue "answers over filings"): convert the QA pairs (seeded 60/40
# split), add unanswerable twins (each question searched without its gold filings), index the
# 20 filings (metadata included), then on the TEST split, each answering run paired:
#   1. base: the default retrieval with the bundled SmolLM2 as it ships (pipelines/hybrid_base.py);
#   2. default: the shipped default pipeline (its generator carries the project's grounded
#      adapter when one ships), against 1;
#   3. scoped: the default with scoping (pipelines/hybrid_scoped.py), against 2;
#   4. refusal: the default with grounded refusal calibrated on the TRAIN split
#      (`ragsys train abstention`), against 2.
# Metrics: Recall@5 of gold documents, numeric_match, no_citation_rate, citation precision, and
# abstention on answerable / unanswerable questions. Reports land in runs/sec10q/eval/*.html.
# About 45 min on a 2-core CPU.
source "$(dirname "$0")/common.sh"
DATA=${SEC10Q:-../shared/data/sec10q}
OUT=runs/sec10q
mkdir -p $OUT
$R convert sec10q "$DATA" --out $OUT/sec10q.jsonl
$R convert unanswerable $OUT/sec10q.jsonl --out $OUT/sec10q-twins.jsonl
$R index "$DATA/docs" --index $OUT/index --json | tail -n 1
ev() {  # name, pipeline, extra args
  $R eval --index $OUT/index --eval-set $OUT/sec10q-twins.jsonl --split test --pipeline "$2" -k 5 \
     --out $OUT/eval --name "$1" "${@:3}" --json | tail -n 1
}
ev base-test pipelines/hybrid_base.py
ev default-test pipelines/hybrid.py --baseline $OUT/eval/base-test.json
ev scoped-test pipelines/hybrid_scoped.py --baseline $OUT/eval/default-test.json
$R train abstention --pipeline pipelines/hybrid.py --index $OUT/index --eval-set $OUT/sec10q.jsonl \
   --out $OUT/refusal -k 5 --json | tail -n 1
ev refusal-test $OUT/refusal --baseline $OUT/eval/default-test.json
