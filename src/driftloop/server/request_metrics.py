"""A pure ASGI middleware that counts every HTTP request of the server by endpoint: requests by
status, latency, and errors by kind (``server`` for a 5xx, else the status), in the server's
Prometheus metrics (`server.prometheus_metrics`)."""

from __future__ import annotations

import time
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from driftloop.server import prometheus_metrics as server_metrics

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class RequestMetrics:
    """Wraps an ASGI app; `metrics` receives one observation per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: server_metrics.ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: typing.MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            metrics = self.metrics
            metrics.requests.labels(
                endpoint=endpoint, method=scope["method"], status=str(status[0])).inc()
            metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)
            if status[0] >= 400:
                kind = "server" if status[0] >= 500 else str(status[0])
                metrics.errors.labels(endpoint=endpoint, kind=kind).inc()
