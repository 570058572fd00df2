"""BM25 alone (Lucene variant, English stopwords and Snowball stemming)."""

from ragsys.generate import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25 import BM25Config

CONFIG = PipelineConfig(name="bm25", retrievers=(BM25Config(),), generator=GeneratorConfig())
