#!/usr/bin/env bash
# PubMedQA: LoRA-tune SmolLM2-135M on the trainval questions (split "train"), first SFT on the
# pipeline's own retrieved passages, then KTO on top with thumbs from the labels (the SFT
# model answers each train question; up if its yes/no/maybe matches the gold label, else
# down), and score both on the official test split against the untuned run of
# eval/pubmedqa.sh (same settings: 3 passages, 48 new tokens, constrained label step).
# SFT also trains the constrained label step's turn (the one-word yes/no/maybe follow-up the
# eval asks after each answer), and KTO's thumbs judge the verdict each answer states.
# CPU budget: SFT uses the first 240 train questions, KTO the first 160 (the SFT model answers
# them, ~48 tokens each, about half of its 60-minute budget; a re-run resumes), and both
# models are scored on the first LIMIT test questions (default 250, paired with the baseline
# on the same ones; LIMIT=500 for all). Needs eval/pubmedqa.sh first.
# OMP_NUM_THREADS=1 is faster on a busy 2-core machine.
source "$(dirname "$0")/common.sh"
OUT=runs/pubmedqa
BASE=$OUT/eval/hybrid-e2e-test.json
STEP=${1:-all}
LIMIT=${LIMIT:-250}
if [ "$STEP" = all ] || [ "$STEP" = sft ]; then
  $R train generator --pipeline pipelines/hybrid.py --index $OUT/index --eval-set $OUT/pubmedqa.jsonl \
     --method sft --limit 240 -k 3 --epochs 1 --lr 2e-4 --batch-size 1 --grad-accum 1 --no-gradient-checkpointing --seed 0 --out $OUT/sft --json | tail -n 1
  $R eval --index $OUT/index --eval-set $OUT/pubmedqa.jsonl --split test --pipeline $OUT/sft -k 3 \
     --max-new-tokens 48 --limit $LIMIT --baseline $BASE --out $OUT/eval --name sft-e2e-test --json | tail -n 1
fi
if [ "$STEP" = all ] || [ "$STEP" = kto ]; then
  $R train generator --pipeline $OUT/sft --index $OUT/index --eval-set $OUT/pubmedqa.jsonl \
     --method kto --limit 160 --max-new-tokens 48 -k 3 --epochs 1 --lr 1e-4 --batch-size 2 --grad-accum 2 --beta 0.1 --seed 0 --max-minutes 60 --out $OUT/sft-kto --json | tail -n 1
  $R eval --index $OUT/index --eval-set $OUT/pubmedqa.jsonl --split test --pipeline $OUT/sft-kto -k 3 \
     --max-new-tokens 48 --limit $LIMIT --baseline $BASE --out $OUT/eval --name sft-kto-e2e-test --json | tail -n 1
fi
