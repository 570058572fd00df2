"""Per-route request counts and latency percentiles, kept in memory.

Latencies are a bounded window of the most recent requests per route, so memory is
constant however long the server runs, and p50/p95 describe recent behaviour.
A streamed response is timed until its last byte, not its headers.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WINDOW = 2048


class Metrics:
    """Thread-safe: the middleware records from the event loop, `/metrics` reads anywhere."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._latency: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self._window))
        self._started = time.monotonic()

    def record(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counts[route][status] += 1
            self._latency[route].append(seconds)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            routes = {r: _route_stats(dict(c), list(self._latency[r])) for r, c in self._counts.items()}
        return {
            "uptime_s": round(time.monotonic() - self._started, 3),
            "routes": dict(sorted(routes.items())),
        }


def _route_stats(counts: dict[int, int], latencies: list[float]) -> dict[str, object]:
    ms = np.asarray(latencies, dtype=np.float64) * 1000.0
    p50, p95 = np.percentile(ms, [50, 95]).tolist() if len(ms) else [0.0, 0.0]
    return {
        "count": sum(counts.values()),
        "errors": sum(n for s, n in counts.items() if s >= 400),
        "status": {str(s): n for s, n in sorted(counts.items())},
        "p50_ms": round(p50, 3),
        "p95_ms": round(p95, 3),
    }


class MetricsMiddleware:
    """Times every HTTP request and files it under its route template (`POST /ask`), so
    document paths do not each become a route. Unmatched paths share one bucket per method,
    as do requests refused before routing (413 for an oversize body)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.record(_route_name(scope), status, time.perf_counter() - started)


def _route_name(scope: Scope) -> str:
    route = scope.get("route")  # FastAPI's router sets it on the scope after matching
    path = getattr(route, "path", None)
    return f"{scope['method']} {path}" if isinstance(path, str) else f"{scope['method']} (unmatched)"
