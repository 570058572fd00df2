#!/usr/bin/env bash
# Trains the small grounded-answering LoRA adapter ragsys can ship for SmolLM2, from data the
# project makes itself (data/grounded/make_grounded.py: invented companies' quarterly reports and
# questions about their figures, some about quarters no report covers) plus PubMedQA trainval
# questions; never the 10-Q questions or the demo corpus. SFT on the pipeline's own retrieval:
# the target is the reference answer with [n] for the gold passages, or the abstention sentence
# when retrieval missed the gold report. Writes runs/grounded/sft (a pipeline directory) and
# copies its adapter to ADAPTER_OUT when set. About 40 minutes on a 2-core CPU.
source "$(dirname "$0")/common.sh"
OUT=runs/grounded
STEPS_MINUTES=${MAX_MINUTES:-45}
.venv/bin/python data/grounded/make_grounded.py $OUT --pubmedqa ${PUBMEDQA:-../shared/data/pubmedqa}
$R index $OUT/corpus.jsonl --index $OUT/index --pipeline pipelines/hybrid_base.py --json | tail -n 1
$R train generator --pipeline pipelines/hybrid_base.py --index $OUT/index --eval-set $OUT/train.jsonl \
   --method sft --out $OUT/sft -k 3 --epochs 1 --bf16 --balance-labels --max-minutes "$STEPS_MINUTES" --json \
   | tail -n 1 > $OUT/sft-result.json.new
mv $OUT/sft-result.json.new $OUT/sft-result.json  # a failed run keeps the last result
cat $OUT/sft-result.json
if [ -n "${ADAPTER_OUT:-}" ]; then
  .venv/bin/python - "$OUT" "$ADAPTER_OUT" <<'PY'
import json, shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from ragsys.models import ADAPTER_CARD
from ragsys.pipeline import PipelineConfig
out, dest = Path(sys.argv[1]), Path(sys.argv[2])
src = Path(PipelineConfig.load(out / "sft").generator.adapter)
result = json.loads((out / "sft-result.json").read_text())
dest.mkdir(parents=True, exist_ok=True)
shutil.copy(src / "adapter_config.json", dest / "adapter_config.json")
tensors = {k: v.to(torch.float16) for k, v in load_file(src / "adapter_model.safetensors").items()}
save_file(tensors, dest / "adapter_model.safetensors")  # fp16 halves the file; loading casts back
docs = sum(1 for _ in (out / "corpus.jsonl").open())
questions = sum(1 for _ in (out / "train.jsonl").open())
card = {
    "trained_on": (
        f"ragsys's own grounded-answering data: {docs} invented companies' quarterly reports and "
        f"{questions} train questions (data/grounded/make_grounded.py; PubMedQA trainval questions "
        "among them), never the 10-Q questions or the demo corpus; LoRA SFT on the default "
        "pipeline's own retrieval (3 passages) to answer with the figure and its [n] citation, "
        "or abstain when the passages miss the report"
    ),
    "command": "ADAPTER_OUT=ragsys/generate/adapters/smollm2-grounded bash eval/train_grounded_adapter.sh",
    "training": {k: result.get(k) for k in ("method", "steps", "examples", "epochs", "minutes", "stats")
                 if k in result},
}
(dest / ADAPTER_CARD).write_text(json.dumps(card, indent=1) + "\n")
print(f"adapter copied to {dest}")
PY
fi
