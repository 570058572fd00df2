#!/usr/bin/env bash
# `ragsys tune` on the 10-Q filings (issue "tune that shows its gain"): from pipelines/hybrid.py
# (the shipped default generator), tuned on the non-test questions of the seeded 60/40 split,
# reported on the test split (78 questions) with the untuned pipeline, every kept stage's
# ablation and the isolated control, paired. Stages: scope (routing on the train questions' gold
# filings), generator (SFT on what the pipeline retrieves: the reference answer with [n] for gold
# passages) and preference (KTO thumbs and CLAIR pairs from the model's own answers to the train
# questions, judged by numeric_match against the reference). The run's wall time and peak RSS
# come from /usr/bin/time (runs/sec10q/tune.time, or TUNE_OUT.time). TUNE_OUT (default
# runs/sec10q/tune) names the run's directory, so runs with other STAGES sit side by side;
# SFT_CONTEXTS=evidence trains the generator stage with the gold evidence put in.
# Needs eval/sec10q_answers.sh first (the index and the converted eval set).
source "$(dirname "$0")/common.sh"
OUT=runs/sec10q
TUNE=${TUNE_OUT:-$OUT/tune}
/usr/bin/time -v -o "$TUNE.time" $R tune --pipeline pipelines/hybrid.py --index $OUT/index \
   --eval-set $OUT/sec10q.jsonl --out "$TUNE" --stages "${STAGES:-scope,generator,preference}" \
   --max-minutes "${MAX_MINUTES:-60}" --folds "${FOLDS:-0}" --sft-contexts "${SFT_CONTEXTS:-retrieved}" \
   --seed 0 --json | tail -n 1
grep -E "Elapsed|Maximum resident" "$TUNE.time"
