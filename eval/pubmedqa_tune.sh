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
# Needs eval/pubmedqa.sh first (the index and the converted eval set).
source "$(dirname "$0")/common.sh"
.venv/bin/ragsys tune --pipeline pipelines/hybrid.py --index runs/pubmedqa/index \
   --eval-set runs/pubmedqa/pubmedqa.jsonl --out runs/pubmedqa/tune --stages "${STAGES:-generator}" \
   --max-minutes "${MAX_MINUTES:-30}" --dev-answers 50 --report-answers 100 --seed 0 --json | tail -n 1
