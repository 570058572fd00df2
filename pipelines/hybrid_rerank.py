"""The default hybrid retrieval with a trained cross-encoder reranking the fused top-50.

No pretrained cross-encoder ships offline and an untrained one makes rankings worse, so
this pipeline needs one you trained (`ragsys train reranker ... --out runs/reranker`) or
any cross-encoder id/path you have, given by RAGSYS_RERANKER (default: runs/reranker).
`interpolate` mixes in the fused retrieval score, which a reranker trained on little data
needs to stay at least as good as the list it reranks.
"""

import os

from ragsys.generate import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.rerank import CrossEncoderConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.dense import DenseConfig

CONFIG = PipelineConfig(
    name="hybrid-rerank",
    retrievers=(BM25Config(), DenseConfig(model="minilm")),
    reranker=CrossEncoderConfig(
        model=os.environ.get("RAGSYS_RERANKER", "runs/reranker"), top_n=50, interpolate=0.3
    ),
    generator=GeneratorConfig(),
)
