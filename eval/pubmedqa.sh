#!/usr/bin/env bash
# PubMedQA (PQA-L) end to end with the untuned default pipeline: convert (trainval -> train,
# official test -> test, the 1,000 abstracts as a BEIR corpus), index, and answer the 500
# test questions (3 passages, 48 new tokens, constrained yes/no/maybe step). ~45 min on a
# 2-core CPU; OMP_NUM_THREADS=1 is faster there when anything else is running.
source "$(dirname "$0")/common.sh"
DATA=${PUBMEDQA:-../shared/data/pubmedqa}
OUT=runs/pubmedqa
mkdir -p $OUT
$R convert pubmedqa "$DATA" --out $OUT/pubmedqa.jsonl --corpus-out $OUT/corpus.jsonl
$R index $OUT/corpus.jsonl --index $OUT/index --json | tail -n 1
$R eval --index $OUT/index --eval-set $OUT/pubmedqa.jsonl --split test -k 3 --max-new-tokens 48 \
   --out $OUT/eval --name hybrid-e2e-test --json | tail -n 1
