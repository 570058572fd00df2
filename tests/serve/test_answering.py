"""Answering a request: a stream the client leaves early stops the generation."""

from __future__ import annotations

import asyncio
import threading

from ragsys.feedback.store import FeedbackStore
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline
from ragsys.serve.answering import Asker
from ragsys.serve.live import LiveIndex
from ragsys.serve.worker import GenerationWorker
from tests.fixtures.serve import FakeGenerator


def test_a_stream_left_early_stops_generating(
    search: Pipeline, tiny_index: Index, store: FeedbackStore
) -> None:
    hold = threading.Event()
    gen = FakeGenerator(pieces=200, hold=hold)
    rag = Pipeline(config=search.config, retrievers=search.retrievers, generator=gen)
    worker = GenerationWorker(2)

    async def read_one() -> None:
        body = Asker(LiveIndex(rag, tiny_index), store, worker).stream("conveyor belt", None)
        assert b'"text"' in await body.__anext__()
        await body.aclose()  # what Starlette does when the client disconnects

    asyncio.run(read_one())
    hold.set()
    worker.stop()
    assert gen.streamed == 1  # the next piece raised ClientGone: generation ended early
