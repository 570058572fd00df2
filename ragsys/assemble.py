"""Builds runnable components from configs and an opened index (the only place
that loads weights for search; configs and components stay I/O-free)."""

from __future__ import annotations

from ragsys.index.reader import Index
from ragsys.models import load_cross_encoder, load_sentence_transformer
from ragsys.pipeline import PipelineConfig, RetrieverConfig, SearchPipeline
from ragsys.protocols import Retriever
from ragsys.rerank import CrossEncoderReranker
from ragsys.retrieve.bm25 import BM25Config, BM25Retriever
from ragsys.retrieve.dense import DenseRetriever, SentenceEncoder
from ragsys.retrieve.tokenize import Tokenizer


def build_retriever(config: RetrieverConfig, index: Index) -> Retriever:
    if isinstance(config, BM25Config):
        scorer = config.build_scorer(index.bm25(config))
        return BM25Retriever(config, scorer, Tokenizer(config.tokenizer), index.chunks)
    vectors = index.vectors(config)
    model = load_sentence_transformer(config.model, max_seq_length=config.max_seq_length)
    encoder = SentenceEncoder(model, config.batch_size, config.query_prefix)
    return DenseRetriever(config, encoder, vectors, index.chunks)


def build_search(config: PipelineConfig, index: Index, generate: bool = False) -> SearchPipeline:
    """Retrievers, fusion and reranker; the generator too when `generate` (it is the slow load)."""
    retrievers = [build_retriever(r, index) for r in config.retrievers]
    reranker = None
    if config.reranker is not None:
        rc = config.reranker
        reranker = CrossEncoderReranker(rc, load_cross_encoder(rc.model, max_length=rc.max_length))
    generator = config.generator.build() if generate and config.generator is not None else None
    return SearchPipeline(config=config, retrievers=retrievers, reranker=reranker, generator=generator)
