#!/usr/bin/env bash
# SciFact: fine-tune MiniLM on the train questions (hard negatives mined from the hybrid
# pipeline over the index built by eval/scifact.sh), re-embed a copy of the index with it,
# and score the tuned dense retriever and the tuned hybrid on the 300 test questions
# against the untuned runs of eval/scifact.sh (paired tests). Needs eval/scifact.sh first.
source "$(dirname "$0")/common.sh"
OUT=runs/scifact
$R train retriever --pipeline pipelines/hybrid.py --index $OUT/index --eval-set $OUT/scifact.jsonl \
   --split train --epochs 1 --lr 5e-5 --negatives 1 --batch-size 32 --seed 0 \
   --out $OUT/tuned-hybrid --reindex $OUT/index-tuned --json | tail -n 1
# The same tuned encoder alone (BM25 dropped), to compare with the untuned dense run.
.venv/bin/python - <<'PY'
from pathlib import Path
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.dense import DenseConfig
c = PipelineConfig.load(Path("runs/scifact/tuned-hybrid"))
dense = tuple(r for r in c.retrievers if isinstance(r, DenseConfig))
c.model_copy(update={"name": "dense-tuned", "retrievers": dense}).save(Path("runs/scifact/tuned-dense"))
PY
$R eval --index $OUT/index-tuned --eval-set $OUT/scifact.jsonl --split test --pipeline $OUT/tuned-dense \
   --baseline $OUT/eval/dense-scifact-test.json --out $OUT/eval --json | tail -n 1
$R eval --index $OUT/index-tuned --eval-set $OUT/scifact.jsonl --split test --pipeline $OUT/tuned-hybrid \
   --baseline $OUT/eval/hybrid-scifact-test.json --out $OUT/eval --name hybrid-tuned-scifact-test --json | tail -n 1
