"""Post-training the generator as a LoRA adapter: SFT, KTO, DPO, APO and CLAIR.

`trainer.train_generator` is the entry point, configured by `config.GeneratorTrainConfig`.
Examples are built by `data` (SFT, the shared `Seq`/`Example` shapes), `feedback` (KTO
thumbs, preference pairs, CLAIR revisions from feedback) and `revise` (CLAIR revisions by a
stronger model); `steps` turns a batch into a loss, `loop` runs the optimizer, `checkpoint`
and `cache` make a stopped run resume exactly.
"""
