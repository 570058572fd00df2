"""Request metrics: counts per route and status, and latency percentiles."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ragsys.serve.metrics import Metrics
from tests.fixtures.serve import ask


def test_metrics_count_requests_and_give_percentiles(client: TestClient) -> None:
    ask(client)
    client.post("/ask", content=b"{", headers={"Content-Type": "application/json"})
    client.get("/nowhere")
    routes = client.get("/metrics").json()["routes"]
    assert routes["POST /ask"]["count"] == 2 and routes["POST /ask"]["status"] == {"200": 1, "400": 1}
    assert (
        routes["POST /ask"]["errors"] == 1
        and routes["POST /ask"]["p95_ms"] >= routes["POST /ask"]["p50_ms"] > 0
    )
    assert routes["GET (unmatched)"]["count"] == 1


def test_metrics_percentiles_are_exact_on_known_samples() -> None:
    m = Metrics(window=100)
    for ms in range(1, 102):  # 1..101 ms; the window keeps the last 100 (2..101)
        m.record("GET /x", 200, ms / 1000)
    stats = m.snapshot()["routes"]["GET /x"]  # type: ignore[index]
    assert (
        stats["count"] == 101
        and stats["p50_ms"] == pytest.approx(51.5)
        and stats["p95_ms"] == pytest.approx(96.05)
    )
