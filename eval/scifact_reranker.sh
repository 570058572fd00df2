#!/usr/bin/env bash
# SciFact: train a MiniLM cross-encoder (from the bi-encoder's weights: no pretrained
# cross-encoder ships offline) to rerank the fitted mixture's top 50. Training data: the train
# questions (hard negatives from the mixture) plus inverse-cloze pseudo-queries from the corpus;
# 20% of the train questions are held out to pick the interpolation weight with the retrieval
# score and to refuse the reranker if no weight helps. Then score on the 300 test questions
# against the mixture alone. Needs eval/scifact.sh first.
source "$(dirname "$0")/common.sh"
OUT=runs/scifact
$R train mixture --pipeline pipelines/mixture.py --index $OUT/index --eval-set $OUT/scifact.jsonl --out $OUT/mixture
$R train reranker --pipeline $OUT/mixture --index $OUT/index --eval-set $OUT/scifact.jsonl --out $OUT/reranker \
   --top-n 50 --max-length 192 --negatives 3 --epochs 1 --lr 1e-4 --ict 1000 --seed 0 --json | tail -n 1
$R eval --index $OUT/index --eval-set $OUT/scifact.jsonl --split test --pipeline $OUT/reranker \
   --baseline $OUT/eval/mixture-scifact-test.json --out $OUT/eval --name reranker-scifact-test --json | tail -n 1
