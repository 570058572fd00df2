#!/usr/bin/env bash
# PubMedQA through `ragsys tune`, reduced to fit a 2-core CPU: the generator stage only (SFT on
# what the pipeline retrieves, with the label step's turn, yes/no/maybe drawn equally often),
# judged on label macro-F1 over 50 dev answers, reported on the first 100 test questions, with
# the isolated control (the generator fine-tuned on gold passages instead of what the pipeline
# retrieves) when the stage is kept. Retrieval is left alone on purpose: the
# untuned hybrid already finds the question's own abstract in the top 10 for 99% of test
# questions, so a retriever stage has nothing to show on this set.
# `STAGES=context,generator bash eval/pubmedqa_tune.sh` afterwards adds the context stage to the
# same run (it resumes: the generator stage is not run again).
# `STAGES=labels MAX_MINUTES=45 DEV_ANSWERS=100 REPORT_ANSWERS=200 OUT=runs/pubmedqa/tune-labels
# bash eval/pubmedqa_tune.sh` runs the label step's calibration alone (no weights trained).
# Needs eval/pubmedqa.sh first (the index and the converted eval set).
source "$(dirname "$0")/common.sh"
/usr/bin/time -v -o "${OUT:-runs/pubmedqa/tune}.time" .venv/bin/ragsys tune --pipeline pipelines/hybrid.py \
   --index runs/pubmedqa/index --eval-set runs/pubmedqa/pubmedqa.jsonl --out "${OUT:-runs/pubmedqa/tune}" \
   --stages "${STAGES:-generator}" --max-minutes "${MAX_MINUTES:-30}" --dev-answers "${DEV_ANSWERS:-50}" \
   --report-answers "${REPORT_ANSWERS:-100}" --seed 0 --json | tail -n 1
grep -E "Elapsed|Maximum resident" "${OUT:-runs/pubmedqa/tune}.time"
