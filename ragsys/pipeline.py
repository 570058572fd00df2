"""Pipelines: a typed configuration (`PipelineConfig`) and the one object it builds (`Pipeline`).

`PipelineConfig` is data (YAML via `model_dump` + `yaml.safe_dump`); component fields are
unions discriminated on `kind`, so only known component classes can ever be loaded from a
saved pipeline - no import paths in configs. `PipelineConfig.build(index)` builds every
component through its own config's `build()` (the only place weights load), and the
`Pipeline` it returns is what `ragsys ask`, `serve`, `eval`, `train` and `tune` all call:
`search`, `answer` and `stream`.

Example:
    >>> config = load_pipeline("pipelines/hybrid.py")  # doctest: +SKIP
    >>> pipeline = config.build(Index.open(Path("idx")), generator=True)  # doctest: +SKIP
    >>> pipeline.answer("What was revenue growth?").citations  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Protocol

import yaml
from pydantic import Field, ValidationError

from ragsys.chunk.chunker import ChunkConfig
from ragsys.extract import ExtractorConfig, PdfExtractorConfig
from ragsys.fusion import ConvexConfig, LearnedMixtureConfig, RRFConfig
from ragsys.generate.config import GeneratorConfig
from ragsys.index.filters import Filters, merge_filters
from ragsys.index.reader import Index, Scope
from ragsys.index.spec import IndexSpec
from ragsys.models import ADAPTER_ALIASES, folder_digest, resolve_adapter
from ragsys.protocols import Generator, OnText, Reranker, Retriever
from ragsys.rerank import CrossEncoderConfig
from ragsys.retrieve.bm25 import BM25Config
from ragsys.retrieve.dense import DenseConfig
from ragsys.scope import MetadataScoper, ScopeConfig
from ragsys.types import Answer, Frozen, Hit

RetrieverConfig = Annotated[BM25Config | DenseConfig, Field(discriminator="kind")]
OVERFETCH = 10  # a retriever that cannot filter is asked for this many times k hits, then filtered
PIPELINE_YAML = "pipeline.yaml"
WEIGHT_FIELDS = ("model", "adapter")  # config fields that name weights: an alias, hub id or folder


class PipelineError(Exception):
    """A pipeline file or directory cannot be loaded or run; the message names it and the fix."""


class PipelineConfig(Frozen):
    """Everything that decides how documents are indexed and how a query is answered.

    Example:
        >>> from ragsys.retrieve.bm25 import BM25Config
        >>> PipelineConfig(name="bm25", retrievers=(BM25Config(),)).retrievers[0].kind
        'bm25'
    """

    name: str = "pipeline"
    extractor: Annotated[ExtractorConfig, Field(discriminator="kind")] = PdfExtractorConfig()
    chunking: ChunkConfig = ChunkConfig()
    retrievers: tuple[RetrieverConfig, ...]
    fusion: Annotated[RRFConfig | ConvexConfig | LearnedMixtureConfig, Field(discriminator="kind")] = (
        RRFConfig()
    )
    reranker: CrossEncoderConfig | None = None
    generator: GeneratorConfig | None = None
    candidates: int = Field(default=100, ge=1, description="hits asked of each retriever before fusion")
    top_k: int = Field(default=10, ge=1)
    # Metadata filters every search applies (ragsys.index.filters): {"form": ("10-Q",)}; a request's
    # own filters (--filter, POST /ask) replace these field by field.
    filters: dict[str, tuple[str, ...]] = {}
    # Routes each question to the documents its company/period/form names (ragsys.scope).
    scoping: ScopeConfig | None = None

    def index_spec(self) -> IndexSpec:
        """What an index must hold for this pipeline: one BM25 structure per tokenizer, one
        vector set per dense encoder, chunked and extracted as configured."""
        return IndexSpec(
            extractor=self.extractor,
            chunking=self.chunking,
            sparse=tuple(r.tokenizer for r in self.retrievers if isinstance(r, BM25Config)),
            dense=tuple(r for r in self.retrievers if isinstance(r, DenseConfig)),
        )

    def build(self, index: Index, *, generator: bool = False) -> Pipeline:
        """Retrievers over `index`, the reranker, and the generator when asked (the slow load)."""
        return Pipeline(
            config=self,
            retrievers=[r.build(index) for r in self.retrievers],
            reranker=self.reranker.build() if self.reranker is not None else None,
            generator=self.generator.build() if generator and self.generator is not None else None,
            index=index,
            scoper=self.scoping.build(index) if self.scoping is not None else None,
        )

    def with_generator(self, suffix: str, **fields: Any) -> PipelineConfig:
        """This pipeline with its generator's `fields` set (a calibrated threshold, label
        offsets), named with `suffix` once: "hybrid" -> "hybrid-refusal", not "-refusal-refusal"."""
        if self.generator is None:
            raise ValueError(f"pipeline {self.name!r} has no generator")
        name = self.name if self.name.endswith(f"-{suffix}") else f"{self.name}-{suffix}"
        return self.model_copy(update={"name": name, "generator": self.generator.model_copy(update=fields)})

    def identity(self) -> str:
        """What the pipeline computes, as one string: its settings with every local weight folder
        replaced by a digest of its files, and its name left out. Two saved copies of the same
        pipeline (each bundling its own copy of the weights) have the same identity."""
        raw = _map_weight_paths(self.model_dump(mode="json", exclude={"name"}), weights_digest)
        return json.dumps(raw, sort_keys=True)

    def version(self) -> str:
        """The name plus a hash of the identity: what feedback and served answers are recorded
        against, so feedback on two differently tuned pipelines of one name is never pooled."""
        return f"{self.name}-{hashlib.sha256(self.identity().encode()).hexdigest()[:12]}"

    def to_yaml(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8")

    @classmethod
    def from_yaml(cls, path: Path) -> PipelineConfig:
        """Reads a config; relative weight paths (`models/...`) resolve against its folder."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate(_map_weight_paths(raw, lambda v: _absolute(v, path.parent)))
        except (OSError, yaml.YAMLError, ValidationError) as e:
            raise PipelineError(f"{path}: not a valid pipeline config: {e}") from e

    def save(self, directory: Path) -> Path:
        """Writes `pipeline.yaml` plus every local weight folder it names (fine-tuned encoders,
        cross-encoders, LoRA adapters) copied under `models/`, so the directory is self-contained
        and `PipelineConfig.load(directory)` behaves exactly the same anywhere."""
        directory.mkdir(parents=True, exist_ok=True)
        raw = _map_weight_paths(self.model_dump(mode="json"), lambda v: _bundle(v, directory))
        path = directory / PIPELINE_YAML
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> PipelineConfig:
        return cls.from_yaml(directory / PIPELINE_YAML)


class Scoped(Protocol):
    """What filtering needs of an index (`ragsys.index.reader.Index` is one)."""

    def scope(self, filters: Filters) -> Scope: ...


@dataclass(frozen=True)
class Pipeline:
    """Retrievers -> fusion -> optional reranker -> optional generator: plain composition.

    `search` ranks passages; `answer` searches, then generates from the hits (the generator
    packs what fits its budget); `stream` does the same, handing each new piece of answer text
    to `on_text` as it is decoded. Answers carry `timings["retrieve_s"]` beside the generator's.
    `filters` (with the config's own) restrict every retriever to the documents whose metadata
    passes them, before top-k (`ragsys.index.filters`).
    """

    config: PipelineConfig
    retrievers: Sequence[Retriever]
    reranker: Reranker | None = None
    generator: Generator | None = None
    index: Scoped | None = None
    scoper: MetadataScoper | None = None

    def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        return self.search_many([query], k, filters=filters)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        filters: Filters | None = None,
    ) -> list[list[Hit]]:
        """`search` for many queries; retrievers that batch (dense encoding) do so."""
        k = k or self.config.top_k
        out: list[list[Hit]] = [[] for _ in queries]
        for group, group_filters in self._routes(queries, filters).items():
            depth = max(self.config.candidates, k)
            scope = self._scope(group_filters)
            asked = [queries[i] for i in group]
            runs = [retrieve_many(r, asked, depth, scope) for r in self.retrievers]
            for j, i in enumerate(group):
                out[i] = self._rank(queries[i], [run[j] for run in runs], k)
                if on_progress is not None:
                    on_progress(1)
        return out

    def _routes(
        self, queries: Sequence[str], filters: Filters | None
    ) -> dict[tuple[int, ...], Filters | None]:
        """Queries grouped by the filters they search with: the request's, plus the documents
        the scoper routes each to (when the pipeline scopes)."""
        if self.scoper is None:
            return {tuple(range(len(queries))): filters}
        groups: dict[str, list[int]] = {}
        merged: dict[str, Filters | None] = {}
        for i, query in enumerate(queries):
            routed = {**(filters or {}), **self.scoper.route(query).filters}
            key = json.dumps(routed, sort_keys=True)
            groups.setdefault(key, []).append(i)
            merged[key] = routed or filters
        return {tuple(ids): merged[key] for key, ids in groups.items()}

    def answer(self, query: str, k: int | None = None, filters: Filters | None = None) -> Answer:
        return self.stream(query, k, on_text=None, filters=filters)

    def stream(
        self, query: str, k: int | None, on_text: OnText | None, filters: Filters | None = None
    ) -> Answer:
        generator = self.require_generator()
        started = time.perf_counter()
        hits = self.search(query, k, filters)
        retrieve_s = time.perf_counter() - started
        answer = generator.stream(query, hits, on_text)
        return answer.model_copy(update={"timings": {"retrieve_s": retrieve_s, **answer.timings}})

    def over(self, index: Index) -> Pipeline:
        """This pipeline over another generation of its index (`ragsys serve` after a re-index):
        the retrievers and the scoper, which read the index, are built anew; the reranker and the
        generator, the slow loads, are shared."""
        scoping = self.config.scoping
        return replace(
            self, retrievers=[r.build(index) for r in self.config.retrievers], index=index,
            scoper=scoping.build(index) if scoping is not None else None,
        )  # fmt: skip

    def require_generator(self) -> Generator:
        if self.generator is None:
            raise PipelineError(
                f"pipeline {self.config.name!r} has no generator loaded; declare one with "
                "`generator=GeneratorConfig()` and build with `config.build(index, generator=True)`"
            )
        return self.generator

    def _scope(self, filters: Filters | None) -> Scope | None:
        merged = merge_filters(self.config.filters, filters)
        if not merged:
            return None
        if self.index is None:
            raise PipelineError("this pipeline was built without its index, so it cannot filter by metadata")
        return self.index.scope(merged)

    def _rank(self, query: str, runs: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
        hits = self.config.fusion.fuse(runs) if len(runs) > 1 else list(runs[0])
        if self.reranker is not None:
            return self.reranker.rerank(query, hits, k)
        return hits[:k]


def retrieve_many(
    retriever: Retriever, queries: Sequence[str], k: int, scope: Scope | None = None
) -> list[list[Hit]]:
    """Every query's hits; within `scope` (a filter) when given. Retrievers that take rows
    (ragsys's BM25 and dense) filter before top-k; any other is asked for more and filtered."""
    batched = getattr(retriever, "retrieve_many", None)
    if scope is None:
        if callable(batched):
            return list(batched(queries, k))
        return [retriever.retrieve(q, k) for q in queries]
    if callable(batched) and "rows" in inspect.signature(batched).parameters:
        return list(batched(queries, k, rows=scope.rows))
    wide = [retriever.retrieve(q, k * OVERFETCH) for q in queries]
    return [[h for h in hits if h.chunk.doc_id in scope.docs][:k] for hits in wide]


# --- saving and loading ---------------------------------------------------------------------


def _map_weight_paths(node: object, fn: Callable[[str], str]) -> object:
    if isinstance(node, dict):
        return {
            k: fn(v) if k in WEIGHT_FIELDS and isinstance(v, str) else _map_weight_paths(v, fn)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_map_weight_paths(v, fn) for v in node]
    return node


def weights_digest(value: str) -> str:
    """A weight folder's content digest (the same for every copy of it); model aliases and hub ids
    as given; a shipped adapter's name by its folder's digest (a new release may retrain it)."""
    folder = resolve_adapter(value) if value in ADAPTER_ALIASES else Path(value)
    if not folder.is_dir():
        return value  # an alias or a hub id names itself
    return f"sha256:{folder_digest(folder)}"


def _absolute(value: str, base: Path) -> str:
    candidate = base / value
    return str(candidate) if not Path(value).is_absolute() and candidate.exists() else value


def _bundle(value: str, directory: Path) -> str:
    """A local weight folder outside `directory` is copied in; aliases and hub ids stay as they are."""
    src = Path(value)
    if not src.is_dir():
        return value
    src, root = src.resolve(), directory.resolve()
    if root in src.parents:
        return str(src.relative_to(root))
    dest = root / "models" / f"{src.name}-{hashlib.sha256(str(src).encode()).hexdigest()[:8]}"
    if not dest.exists():
        shutil.copytree(src, dest)
    return str(dest.relative_to(root))


def default_pipeline() -> PipelineConfig:
    """BM25 + the bundled MiniLM, fused with reciprocal rank fusion; no reranker; SmolLM2 with
    the bundled grounded-answering adapter answers.

    No pretrained cross-encoder is available offline, and an untrained one is worse
    than none, so the default reranks nothing until `ragsys train reranker` made one.
    """
    return PipelineConfig(
        name="hybrid",
        retrievers=(BM25Config(), DenseConfig()),
        fusion=RRFConfig(),
        # SmolLM2 with ragsys's own grounded-answering LoRA (ragsys/generate/adapters, its card
        # says what it was trained on): the base model states wrong figures and cites nothing.
        # pipelines/hybrid_base.py is the same pipeline without it.
        generator=GeneratorConfig(adapter="smollm2-grounded"),
    )


def load_pipeline(spec: str | Path | None) -> PipelineConfig:
    """A `pipelines/*.py` file (exposing `build()` or `CONFIG`), a saved directory, or the default."""
    if spec is None or str(spec) == "":
        return default_pipeline()
    path = Path(spec)
    if path.is_dir():
        if not (path / PIPELINE_YAML).exists():
            raise PipelineError(
                f"{path}: no {PIPELINE_YAML} here; pass a saved pipeline directory or a .py file"
            )
        return PipelineConfig.from_yaml(path / PIPELINE_YAML)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return PipelineConfig.from_yaml(path)
    if path.suffix != ".py" or not path.exists():
        raise PipelineError(f"{path}: not found; pass a pipelines/*.py file or a saved pipeline directory")
    return _load_py(path)


def _load_py(path: Path) -> PipelineConfig:
    # Executing the user's own pipeline file is the point of declaring pipelines in
    # Python; configs loaded from saved directories never import anything.
    spec = importlib.util.spec_from_file_location(f"ragsys_pipeline_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PipelineError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "build"):
        config = module.build()
    elif hasattr(module, "CONFIG"):
        config = module.CONFIG
    else:
        raise PipelineError(f"{path}: define `build() -> PipelineConfig` or `CONFIG = PipelineConfig(...)`")
    if not isinstance(config, PipelineConfig):
        raise PipelineError(f"{path}: build()/CONFIG returned {type(config).__name__}, not PipelineConfig")
    return config
