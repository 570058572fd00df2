"""`ragsys serve`: the HTTP API and web page over one index (see ragsys/serve/).

Settings are checked before any model loads, so a refused configuration (a public
address without a token) fails in milliseconds with the fix, not after a long load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragsys.cli.console import err, user_errors
from ragsys.cli.options import IndexOpt, PipelineOpt

if TYPE_CHECKING:  # fastapi and the models load only when the command runs
    from fastapi import FastAPI

    from ragsys.serve.settings import ServeSettings

TOKEN_ENV = "RAGSYS_TOKEN"


def serve(
    index_dir: IndexOpt,
    pipeline: PipelineOpt = None,
    host: Annotated[
        str, typer.Option(help="address to bind; anything but loopback needs a token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    feedback: Annotated[
        Path, typer.Option("--feedback", help="feedback db (SQLite), created if missing")
    ] = Path("feedback.db"),
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help=f"API token (Authorization: Bearer); prefer ${TOKEN_ENV}, which ps does not show"
        ),
    ] = None,
    queue_size: Annotated[int, typer.Option(help="questions that may wait for the model; more get 503")] = 8,
) -> None:
    """Serve an index over HTTP (/ask, /ask/stream, /feedback, /documents, /health, /metrics) and a page.

    With a token, POST /admin/pipeline {"path": DIR} swaps in another saved pipeline without a restart.
    """
    with user_errors():
        settings = _settings(host, port, token or os.environ.get(TOKEN_ENV) or None, queue_size)
        from ragsys.models import ModelLoadError  # after the check: refusing must not wait on imports

        try:
            app = _build_app(index_dir, pipeline, feedback, settings)
        except ModelLoadError as e:  # user_errors does not list it; its message already names the fix
            raise ValueError(str(e)) from e
    import uvicorn

    err.print(f"serving {index_dir} at http://{_url_host(host)}:{port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _settings(host: str, port: int, token: str | None, queue_size: int) -> ServeSettings:
    from pydantic import ValidationError

    from ragsys.serve.settings import ServeSettings

    try:
        return ServeSettings(host=host, port=port, token=token, queue_size=queue_size)
    except ValidationError as e:  # one line per problem, without pydantic's URL footer
        raise ValueError("; ".join(str(x["msg"]).removeprefix("Value error, ") for x in e.errors())) from None


def _build_app(index_dir: Path, pipeline: str | None, feedback: Path, settings: ServeSettings) -> FastAPI:
    from ragsys.feedback.store import FeedbackStore
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.serve import create_app

    config = load_pipeline(pipeline)
    if config.generator is None:
        raise ValueError(f"pipeline {config.name!r} has no generator; serve one with `generator=...`")
    index = Index.open(index_dir)
    rag = config.build(index, generator=True)  # the model loads once, here
    return create_app(rag, index, FeedbackStore.open(feedback), settings)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
