#!/usr/bin/env bash
# PubMedQA end to end on the fast CPU path against the fp32 path, in one run: convert, index the
# 1,000 abstracts for both pipelines (their vectors differ by encoder backend), then answer the
# 500 official test questions with each (3 passages, 48 new tokens, constrained yes/no/maybe
# step). The fast run is compared with the fp32 one (paired bootstrap) and both runs' minutes
# are printed. Target: the fast run <= 15 min with accuracy and macro-F1 inside the fp32 CIs.
# About 70 min on a 2-core CPU (the fp32 run is most of it).
source "$(dirname "$0")/common.sh"
DATA=${PUBMEDQA:-../shared/data/pubmedqa}
OUT=runs/pubmedqa-e2e
mkdir -p $OUT
$R convert pubmedqa "$DATA" --out $OUT/pubmedqa.jsonl --corpus-out $OUT/corpus.jsonl
for p in hybrid hybrid_fp32; do  # an index holds one pipeline's vectors: one index each
  $R index $OUT/corpus.jsonl --index $OUT/index-$p --pipeline pipelines/$p.py --json | tail -n 1
done
run() {  # pipeline, name, extra args
  local start=$SECONDS
  $R eval --index $OUT/index-$1 --eval-set $OUT/pubmedqa.jsonl --split test -k 3 --max-new-tokens 48 \
     --pipeline pipelines/$1.py --out $OUT/eval --name "$2" "${@:3}" --json | tail -n 1
  echo "{\"run\": \"$2\", \"minutes\": $(( (SECONDS - start) / 60 )).$(( (SECONDS - start) % 60 * 10 / 60 ))}"
}
run hybrid_fp32 fp32-e2e-test
run hybrid fast-e2e-test --baseline $OUT/eval/fp32-e2e-test.json
