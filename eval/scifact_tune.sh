#!/usr/bin/env bash
# SciFact end to end: `ragsys tune` specializes the hybrid pipeline on the train questions
# (train/dev split inside), then reports on the 300 test questions with the ablation and the
# joint-vs-isolated comparison (runs/scifact/tune/report.html). Needs eval/scifact.sh first.
source "$(dirname "$0")/common.sh"
.venv/bin/ragsys tune --pipeline pipelines/hybrid.py --index runs/scifact/index \
   --eval-set runs/scifact/scifact.jsonl --out runs/scifact/tune --max-minutes 45 --seed 0 --json | tail -n 1
