"""Representations an index holds for a pipeline: one BM25 structure per tokenizer and
one vector set per dense encoder. Keys are content-derived, so a changed tokenizer,
model weights or passage prefix is a different representation."""

from __future__ import annotations

from ragsys.index.cache import config_key
from ragsys.index.manifest import DenseRep, Manifest, SparseRep
from ragsys.models import model_fingerprint
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.dense import DenseConfig


def sparse_key(config: BM25Config) -> str:
    return "bm25-" + config_key(config.tokenizer.model_dump(mode="json"))


def dense_key(config: DenseConfig, fingerprint: str) -> str:
    settings = {
        "fingerprint": fingerprint,
        "passage_prefix": config.passage_prefix,
        "max_seq_length": config.max_seq_length,
        "index": config.index,
    }
    return "dense-" + config_key(settings)


def sparse_reps(config: PipelineConfig) -> tuple[SparseRep, ...]:
    reps = {
        sparse_key(r): SparseRep(key=sparse_key(r), tokenizer=r.tokenizer.model_dump(mode="json"))
        for r in config.retrievers
        if isinstance(r, BM25Config)
    }
    return tuple(reps[k] for k in sorted(reps))


def dense_reps(config: PipelineConfig, prev: Manifest | None) -> tuple[DenseRep, ...]:
    """`dim` and `index_kind` are known only after embedding; reuse them from `prev`."""
    known = {r.key: r for r in prev.dense} if prev is not None else {}
    reps: dict[str, DenseRep] = {}
    for r in config.retrievers:
        if not isinstance(r, DenseConfig):
            continue
        fp = model_fingerprint(r.model)
        key = dense_key(r, fp)
        reps[key] = known.get(key) or DenseRep(
            key=key, model=r.model, fingerprint=fp, passage_prefix=r.passage_prefix,
            max_seq_length=r.max_seq_length, dim=0, index_kind=r.index,
        )  # fmt: skip
    return tuple(reps[k] for k in sorted(reps))


def dense_config_for(config: PipelineConfig, rep: DenseRep) -> DenseConfig:
    for r in config.retrievers:
        if isinstance(r, DenseConfig) and dense_key(r, rep.fingerprint) == rep.key:
            return r
    raise KeyError(rep.key)
