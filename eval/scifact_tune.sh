#!/usr/bin/env bash
# SciFact end to end: `ragsys tune` specializes the hybrid pipeline on the 809 non-test
# questions, judging each stage by cross-fitting over FOLDS folds of all of them, then reports on
# the 300 test questions with the ablation and the joint-vs-isolated comparison
# ($TUNE/report.html). Needs eval/scifact.sh first. The defaults reproduce docs/results.md's
# "Joint tuning on SciFact with cross-fitting"; STAGES=retriever,reranker,mixture FOLDS=0
# MAX_MINUTES=45 is the earlier one-dev-split run.
source "$(dirname "$0")/common.sh"
TUNE=${TUNE_OUT:-runs/scifact/tune}
/usr/bin/time -v -o "$TUNE.time" $R tune --pipeline pipelines/hybrid.py --index runs/scifact/index \
   --eval-set runs/scifact/scifact.jsonl --out "$TUNE" --stages "${STAGES:-retriever,mixture}" \
   --folds "${FOLDS:-3}" --max-minutes "${MAX_MINUTES:-100}" --seed 0 --json | tail -n 1
grep -E "Elapsed|Maximum resident" "$TUNE.time"
