"""BM25 + MiniLM with a learned mixture: fusion family, RRF k and per-retriever weights
are fit by maximizing nDCG@10 on a dev split carved (seeded) from the eval set's train
questions. Fit and save it with

    ragsys train mixture --pipeline pipelines/mixture.py --index DIR --eval-set FILE --out PIPELINE_DIR

(`ragsys eval --pipeline pipelines/mixture.py` fits it on the fly the same way).
"""

from ragsys.fusion import LearnedMixtureConfig
from ragsys.generate import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.dense import DenseConfig

CONFIG = PipelineConfig(
    name="mixture",
    retrievers=(BM25Config(), DenseConfig(model="minilm")),
    fusion=LearnedMixtureConfig(dev_fraction=0.25, seed=0),
    generator=GeneratorConfig(),
)
