#!/usr/bin/env bash
# `make demo`: index a small corpus, search it, and answer a question with citations. The corpus is rendered from
# data/demo/*.md so it exists on any machine; set DEMO_CORPUS=sec10q to use the
# 20 SEC 10-Q filings in ../shared/data/sec10q/docs instead (takes ~10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
RAGSYS=.venv/bin/ragsys
OUT=runs/demo
if [ "${DEMO_CORPUS:-}" = "sec10q" ] && [ -d ../shared/data/sec10q/docs ]; then
  CORPUS=../shared/data/sec10q/docs
  QUESTION="What was Apple's total net sales in the third quarter of 2022?"
else
  CORPUS=$OUT/pdfs
  .venv/bin/python data/make_demo_corpus.py "$CORPUS"
  QUESTION="How much revenue did the warehouse automation segment bring in during Q3 2025?"
fi
$RAGSYS index "$CORPUS" --index "$OUT/index"
echo "--- second run on the unchanged corpus (should skip everything):"
$RAGSYS index "$CORPUS" --index "$OUT/index" --json | tail -n 1
$RAGSYS inspect "$OUT/index"
echo "--- search: $QUESTION"
$RAGSYS search "$QUESTION" --index "$OUT/index" -k 3
echo "--- ask (SmolLM2-135M, bundled; converted from GGUF once into the user cache): $QUESTION"
$RAGSYS ask "$QUESTION" --index "$OUT/index" -k 3
