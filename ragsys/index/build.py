"""`ragsys index`: extract, chunk, embed and switch in a new generation, incrementally.

Invariants:
- the manifest names a generation only once it is complete and fsync'd, so a crash
  (even `kill -9`) at any point leaves the previous generation fully usable;
- extraction results and embeddings are cached by content hash and committed as
  they are produced, so the next run after a crash resumes instead of starting over;
- an unchanged corpus with an unchanged pipeline writes nothing at all (it only removes
  generations that readers have released);
- a full disk or an I/O error removes the partly written generation and raises a typed error
  naming the space needed (`ragsys.index.space`); the current generation is untouched;
- a replaced generation is removed only once no reader leases it (`ragsys.index.lease`).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ragsys.extract import SUPPORTED_SUFFIXES
from ragsys.index.cache import EmbeddingCache, ExtractionCache, config_key
from ragsys.index.errors import IndexError_, IndexNotFoundError
from ragsys.index.executor import Executor, LocalExecutor
from ragsys.index.lease import remove_if_unleased
from ragsys.index.lock import WriterLock
from ragsys.index.manifest import Manifest, read_manifest, write_manifest
from ragsys.index.metadata import metadata_signature, read_overrides
from ragsys.index.plan import FileFailure, Plan, make_plan
from ragsys.index.reps import dense_reps, sparse_reps
from ragsys.index.space import SpaceNeed, tree_bytes
from ragsys.index.spec import IndexSpec
from ragsys.index.summary import IndexSummary
from ragsys.index.writer import GenerationWriter
from ragsys.progress import NullReporter, Reporter
from ragsys.types import Document

GENERATIONS = "generations"
CACHE = "cache"


def fault_point(stage: str) -> None:
    """Crash tests set RAGSYS_FAULT_AT to kill this process (SIGKILL) at a stage."""
    if os.environ.get("RAGSYS_FAULT_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def index_paths(
    paths: Sequence[Path],
    index_dir: Path,
    spec: IndexSpec,
    *,
    passwords: Sequence[str] = (),
    workers: int = 2,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> IndexSummary:
    """Brings `index_dir` up to date with `paths`; see the module docstring for guarantees.

    `executor` runs extraction, chunking and embedding elsewhere (a Ray cluster:
    `ragsys.distributed.RayExecutor`); by default `workers` local processes extract.
    A full disk raises `IndexSpaceError` (with the space needed) and an I/O error
    `IndexWriteError`, after the partly written generation is removed; the current one is intact.
    """
    t0 = time.monotonic()
    need = SpaceNeed(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        with WriterLock(index_dir):
            ex = executor or LocalExecutor(workers)
            return _run(paths, index_dir, spec, passwords, ex, reporter or NullReporter(), need, t0)
    except IndexError_:
        raise
    except Exception as e:
        prev = _read_prev(index_dir) if index_dir.is_dir() else None
        typed = need.failure(e, prev.generation if prev is not None else None)
        if typed is None:
            raise
        raise typed from e


def _run(
    paths: Sequence[Path], index_dir: Path, spec: IndexSpec, passwords: Sequence[str], ex: Executor,
    rep: Reporter, need: SpaceNeed, t0: float,
) -> IndexSummary:  # fmt: skip
    prev = _read_prev(index_dir)
    _remove_partial(index_dir)
    need.generation = _next_name(prev)
    if prev is not None:
        need.prev_generation = prev.generation
        need.prev_bytes = tree_bytes(index_dir / GENERATIONS / prev.generation)
    extractor = spec.extractor_settings()
    rebuild = prev is not None and prev.extractor != extractor
    suffixes = {s.lower() for s in SUPPORTED_SUFFIXES[spec.extractor.kind]}
    plan = make_plan(paths, suffixes, prev, rebuild)
    metadata = read_overrides(paths)
    target = Manifest(
        generation="", created="", chunking=spec.chunking.model_dump(mode="json"), extractor=extractor,
        sparse=sparse_reps(spec), dense=dense_reps(spec, prev), metadata=metadata_signature(metadata),
    )  # fmt: skip
    if prev is not None and not plan.changes and prev.signature() == target.signature():
        _collect_garbage(index_dir / GENERATIONS, keep=prev.generation)  # what readers held last time
        return IndexSummary.of(plan, prev, time.monotonic() - t0, generation=prev.generation)
    t_extract = time.monotonic()
    new_docs = _extract(plan, spec, passwords, ex, index_dir, rep)
    timings = {"extract": round(time.monotonic() - t_extract, 3)}
    _estimate(need, prev, plan, new_docs)
    need.check_free()
    manifest, writer = _write_generation(
        index_dir, prev, target, plan, new_docs, spec, rep, metadata, need, ex
    )
    timings.update(writer.timings)
    return IndexSummary.of(
        plan, manifest, time.monotonic() - t0, generation=manifest.generation, timings=timings,
        chunks_embedded=writer.embedded,
    )  # fmt: skip


def _estimate(need: SpaceNeed, prev: Manifest | None, plan: Plan, new_docs: Sequence[Document]) -> None:
    """The new generation's size from what the current one takes per page it keeps, plus the
    newly extracted text (`ragsys.index.space`)."""
    new_ids = {d.id for d in new_docs}
    known = prev.documents if prev is not None else {}
    kept = set(known) - set(plan.deleted) - new_ids
    new_chars = sum(len(p.text) for d in new_docs for p in d.pages)
    prev_pages = prev.pages if prev is not None else 0
    need.set_estimate(prev_pages, sum(known[d].pages for d in kept), new_chars)


def _next_name(prev: Manifest | None) -> str:
    number = int(prev.generation[1:]) + 1 if prev is not None else 1
    return f"g{number:06d}"


def _read_prev(index_dir: Path) -> Manifest | None:
    try:
        return read_manifest(index_dir)
    except IndexNotFoundError:
        return None


def _remove_partial(index_dir: Path) -> None:
    gens = index_dir / GENERATIONS
    if gens.exists():
        for d in gens.iterdir():
            if d.name.endswith(".partial"):
                shutil.rmtree(d, ignore_errors=True)


def _extract(
    plan: Plan, spec: IndexSpec, passwords: Sequence[str], ex: Executor, index_dir: Path, rep: Reporter
) -> list[Document]:
    """Documents for every file to (re)extract, from the cache when a crashed run made them."""
    cache = ExtractionCache(index_dir / CACHE / "extract.sqlite")
    key = config_key(spec.extractor_settings())
    docs: list[Document] = list(plan.corpus_docs)
    pending = []
    for path, digest in plan.todo:
        hit = cache.get(digest, key, str(path), str(path))
        if hit is not None:
            docs.append(hit)
        else:
            pending.append(path)
    rep.stage("extract", len(plan.todo))
    rep.advance("extract", len(plan.todo) - len(pending))
    ex_config = spec.extractor.model_copy(update={"passwords": tuple(passwords)})
    for result in ex.extract(pending, ex_config, spec.chunking):
        rep.advance("extract")
        if result.document is not None:
            cache.put(result.document, key)
            docs.append(result.document)
        else:
            plan.failures.append(FileFailure(path=result.path, error=result.error or "extraction failed"))
            fault_point("extract-failure")
    cache.close()
    fault_point("extract")
    return docs


def _write_generation(
    index_dir: Path,
    prev: Manifest | None,
    target: Manifest,
    plan: Plan,
    new_docs: list[Document],
    spec: IndexSpec,
    rep: Reporter,
    metadata: Sequence[Mapping[str, str]],
    need: SpaceNeed,
    ex: Executor,
) -> tuple[Manifest, GenerationWriter]:
    gens = index_dir / GENERATIONS
    gens.mkdir(exist_ok=True)
    name = _next_name(prev)
    partial = gens / f"{name}.partial"
    prev_dir = gens / prev.generation if prev is not None else None
    try:
        cache = EmbeddingCache(index_dir / CACHE / "embeddings.sqlite")
        try:
            writer = ex.writer(partial, prev, prev_dir, target, spec, cache, rep, fault_point, metadata)
            stats = writer.write(plan, new_docs)
        finally:
            cache.close()
        if (gens / name).exists():  # finished by a run killed before its switch: never named, so unused
            shutil.rmtree(gens / name)
        os.replace(partial, gens / name)
        manifest = stats.model_copy(update={"generation": name, "created": datetime.now(UTC).isoformat()})
        fault_point("switch")
        write_manifest(index_dir, manifest)
    except BaseException:
        need.written = tree_bytes(partial) + tree_bytes(gens / name)
        _discard_unnamed(index_dir, name)
        raise
    _collect_garbage(gens, keep=name)
    return manifest, writer


def _discard_unnamed(index_dir: Path, name: str) -> None:
    """After a failed run: its partial generation goes, and so does `name` unless the manifest
    already names it (the switch happened and something after it failed)."""
    _remove_partial(index_dir)
    current = _read_prev(index_dir)
    if current is None or current.generation != name:
        shutil.rmtree(index_dir / GENERATIONS / name, ignore_errors=True)


def _collect_garbage(gens: Path, keep: str) -> None:
    """Removes every generation but `keep` that no reader leases (`ragsys.index.lease`); one
    still in use stays until a later run finds it released."""
    if not gens.is_dir():
        return
    for d in sorted(gens.iterdir()):
        if d.is_dir() and d.name != keep and not d.name.endswith(".partial"):
            remove_if_unleased(d)
