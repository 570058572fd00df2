"""The default: BM25 + MiniLM fused with reciprocal rank fusion (k=60), no reranker.

No pretrained cross-encoder ships offline; see pipelines/hybrid_rerank.py once
`ragsys train reranker` has produced one.
"""

from ragsys.pipeline import PipelineConfig, default_pipeline


def build() -> PipelineConfig:
    return default_pipeline()
