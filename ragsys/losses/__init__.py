"""Training losses as pure functions over tensors (no model, no trainer state).

`sequence.py` turns logits into per-sequence log-probs and the SFT loss; `preference.py`
holds DPO, APO-zero and APO-down over paired log-probs; `kto.py` holds KTO over unpaired
ones; `ranking.py` holds the language-model-supervised retrieval loss. Ranking losses that
sentence-transformers already ships (MultipleNegativesRankingLoss, cross-encoder BCE and
listwise losses, MarginMSE) are used from there, not rewritten.
"""

from ragsys.losses.kto import kto_loss
from ragsys.losses.preference import PAIRED_LOSSES, PairedLoss, apo_down_loss, apo_zero_loss, dpo_loss
from ragsys.losses.ranking import lm_supervised_retrieval_loss
from ragsys.losses.sequence import completion_logps, sft_loss

__all__ = [
    "PAIRED_LOSSES",
    "PairedLoss",
    "apo_down_loss",
    "apo_zero_loss",
    "completion_logps",
    "dpo_loss",
    "kto_loss",
    "lm_supervised_retrieval_loss",
    "sft_loss",
]
