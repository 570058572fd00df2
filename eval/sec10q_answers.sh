#!/usr/bin/env bash
# The 10-Q filings end to end (issue "answers over filings"): convert the QA pairs (seeded 60/40
# split), add unanswerable twins (each question searched without its gold filings), index the
# 20 filings (metadata included), then on the TEST split:
#   1. the default pipeline: retrieval (Recall@5 of gold documents) and answers (numeric_match,
#      no_citation_rate, citation precision, abstention on answerable / unanswerable);
#   2. the same with scoping (pipelines/hybrid_scoped.py), paired against 1;
#   3. grounded refusal calibrated on the TRAIN split (`ragsys train abstention`), paired against 1.
# Reports land in runs/sec10q/eval/*.html. About 30 min on a 2-core CPU.
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
ev default-test pipelines/hybrid.py
ev scoped-test pipelines/hybrid_scoped.py --baseline $OUT/eval/default-test.json
$R train abstention --pipeline pipelines/hybrid.py --index $OUT/index --eval-set $OUT/sec10q.jsonl \
   --out $OUT/refusal -k 5 --json | tail -n 1
ev refusal-test $OUT/refusal --baseline $OUT/eval/default-test.json
