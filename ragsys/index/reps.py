"""Representations an index holds for its spec: one BM25 structure per tokenizer and
one vector set per dense encoder. Keys are content-derived, so a changed tokenizer,
model weights or passage prefix is a different representation."""

from __future__ import annotations

from ragsys.index.cache import config_key
from ragsys.index.manifest import DenseRep, Manifest, SparseRep
from ragsys.index.spec import IndexSpec
from ragsys.models import model_fingerprint
from ragsys.retrieve.dense import DenseConfig
from ragsys.retrieve.tokenize import TokenizerConfig


def sparse_key(tokenizer: TokenizerConfig) -> str:
    return "bm25-" + config_key(tokenizer.model_dump(mode="json"))


def dense_key(config: DenseConfig, fingerprint: str) -> str:
    settings = {
        "fingerprint": fingerprint,
        "passage_prefix": config.passage_prefix,
        "max_seq_length": config.max_seq_length,
        "index": config.index,
        # Vectors from an int8 or bf16 encoder differ slightly from fp32 ones (cosine >= 0.99):
        # never mixed in one vector set. The configured choice, not the machine's resolution of
        # it, so an index stays searchable where OpenVINO is missing.
        "backend": config.backend,
    }
    return "dense-" + config_key(settings)


def sparse_reps(spec: IndexSpec) -> tuple[SparseRep, ...]:
    reps = {
        sparse_key(t): SparseRep(key=sparse_key(t), tokenizer=t.model_dump(mode="json")) for t in spec.sparse
    }
    return tuple(reps[k] for k in sorted(reps))


def dense_reps(spec: IndexSpec, prev: Manifest | None) -> tuple[DenseRep, ...]:
    """`dim` and `index_kind` are known only after embedding; reuse them from `prev`."""
    known = {r.key: r for r in prev.dense} if prev is not None else {}
    reps: dict[str, DenseRep] = {}
    for r in spec.dense:
        fp = model_fingerprint(r.model)
        key = dense_key(r, fp)
        reps[key] = known.get(key) or DenseRep(
            key=key, model=r.model, fingerprint=fp, passage_prefix=r.passage_prefix,
            max_seq_length=r.max_seq_length, dim=0, index_kind=r.index,
        )  # fmt: skip
    return tuple(reps[k] for k in sorted(reps))


def dense_config_for(spec: IndexSpec, rep: DenseRep) -> DenseConfig:
    for r in spec.dense:
        if dense_key(r, rep.fingerprint) == rep.key:
            return r
    raise KeyError(rep.key)
