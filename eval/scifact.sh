#!/usr/bin/env bash
# SciFact retrieval: index the corpus, convert the qrels, and score the four shipped
# retrieval pipelines on the 300 test queries (the mixture's weights are fit on a dev
# split carved from the train queries). Reports land in runs/scifact/eval/.
source "$(dirname "$0")/common.sh"
DATA=${SCIFACT:-../shared/data/scifact}
OUT=runs/scifact
mkdir -p $OUT
$R convert beir "$DATA" --out $OUT/scifact.jsonl
$R index "$DATA/corpus.jsonl" --index $OUT/index --json | tail -n 1
for p in bm25 dense hybrid mixture; do
  base=()
  [ "$p" != bm25 ] && base=(--baseline $OUT/eval/bm25-scifact-test.json)
  $R eval --index $OUT/index --eval-set $OUT/scifact.jsonl --split test --pipeline pipelines/$p.py \
     --out $OUT/eval "${base[@]}" --json | tail -n 1
done
