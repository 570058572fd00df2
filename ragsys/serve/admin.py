"""`POST /admin/pipeline`: serve another saved pipeline without a restart.

The new pipeline is built (its models loaded) while the old one keeps answering; then
`LiveIndex.swap_pipeline` swaps it in, so every request is answered by one whole pipeline,
old or new, and every stored answer carries the version that produced it. Only a saved
pipeline *directory* loads (`pipeline.yaml`, data, never code), and it must fit the index
being served: the same chunking and extractor, and every BM25 and vector set it searches
(otherwise 409, since its retrievers would read representations the index lacks).

Changing what a server answers with is an administrator's act, so the route needs the API
token even on loopback; a server started without one answers 403 saying how to enable it.

Example:
    curl -X POST -H "Authorization: Bearer $RAGSYS_TOKEN" -H 'Content-Type: application/json' \\
        -d '{"path": "tuned/all"}' http://127.0.0.1:8000/admin/pipeline
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ragsys.index.manifest import Manifest
from ragsys.index.reader import Index
from ragsys.index.reps import dense_reps, sparse_reps
from ragsys.index.spec import IndexSpec
from ragsys.pipeline import PIPELINE_YAML, Pipeline, PipelineConfig, PipelineError
from ragsys.serve.live import LiveIndex
from ragsys.serve.responses import errors
from ragsys.types import Frozen

NO_TOKEN = (
    "admin routes are off: this server was started without an API token; restart it with "
    "--token (or the RAGSYS_TOKEN environment variable) and send `Authorization: Bearer <token>`"
)


class SwapRequest(Frozen):
    path: str = Field(
        min_length=1, max_length=4096,
        description="a saved pipeline directory on the server (holding pipeline.yaml, as the --out of "
        "`ragsys tune` or `ragsys train` writes); relative paths start at the server's working directory",
    )  # fmt: skip


class SwapResponse(Frozen):
    pipeline: str
    pipeline_version: str = Field(description="the version new requests are answered (and recorded) by")
    previous_version: str
    generation: str | None = Field(default=None, description="the index generation it was built over")
    load_s: float = Field(description="seconds spent loading and building the new pipeline")


class IndexMismatch(Exception):
    """The pipeline needs representations the served index does not hold."""


def index_mismatch(spec: IndexSpec, manifest: Manifest) -> str | None:
    """Why an index built as `manifest` cannot serve a pipeline needing `spec`, or None if it can."""
    if spec.chunking.model_dump(mode="json") != manifest.chunking:
        return "it chunks documents differently"
    if spec.extractor_settings() != manifest.extractor:
        return "it extracts documents differently"
    have = {r.key for r in manifest.sparse} | {r.key for r in manifest.dense}
    need = {r.key for r in sparse_reps(spec)} | {r.key for r in dense_reps(spec, manifest)}
    missing = sorted(need - have)
    return f"the index lacks {', '.join(missing)} (a tokenizer or encoder it searches)" if missing else None


def load_saved(raw: str) -> PipelineConfig:
    """The pipeline saved in directory `raw`; 404 when there is none, 422 when it is not valid."""
    if "\x00" in raw:
        raise HTTPException(422, "path contains a NUL character; send a directory path")
    path = Path(raw)
    try:
        found = path.is_dir() and (path / PIPELINE_YAML).is_file()
    except OSError:  # a name too long for the file system, a permission error: nothing to load
        found = False
    if not found:
        raise HTTPException(
            404, f"no saved pipeline at {raw!r}: pass a directory holding {PIPELINE_YAML} "
            "(the --out of `ragsys tune` or `ragsys train`), as a path on the server",
        )  # fmt: skip
    try:
        config = PipelineConfig.load(path)
    except PipelineError as e:
        raise HTTPException(422, str(e)) from e
    if config.generator is None:
        raise HTTPException(422, f"pipeline {config.name!r} in {raw!r} has no generator; serve one that has")
    return config


def builder(config: PipelineConfig) -> Any:
    """The build `LiveIndex.swap_pipeline` runs over the generation it will serve."""

    def build(index: Index) -> Pipeline:
        why = index_mismatch(config.index_spec(), index.manifest)
        if why is not None:
            raise IndexMismatch(
                f"pipeline {config.name!r} does not fit the served index: {why}; re-index for it "
                "(`ragsys index ... --pipeline DIR`) and serve that index, or swap in a pipeline "
                "tuned over this one"
            )
        return config.build(index, generator=True)

    return build


def admin_routes(app: FastAPI, live: LiveIndex, token: str | None, auth: list[Any]) -> None:
    @app.post("/admin/pipeline", dependencies=auth, response_model=SwapResponse,
              responses=errors(400, 401, 403, 404, 409, 413, 422),
              summary="Serve another saved pipeline without a restart (token required)")  # fmt: skip
    async def swap_pipeline(req: SwapRequest) -> SwapResponse:
        if token is None:
            raise HTTPException(403, NO_TOKEN)
        config = await run_in_threadpool(load_saved, req.path)
        started = time.perf_counter()
        try:
            old, new = await run_in_threadpool(live.swap_pipeline, builder(config))
        except IndexMismatch as e:
            raise HTTPException(409, str(e)) from e
        except Exception as e:  # missing weights, a broken adapter: the old pipeline keeps serving
            raise HTTPException(422, f"pipeline {config.name!r} could not be built: {e}") from e
        return SwapResponse(
            pipeline=new.pipeline.config.name, pipeline_version=new.version,
            previous_version=old.version, generation=new.generation,
            load_s=round(time.perf_counter() - started, 3),
        )  # fmt: skip
