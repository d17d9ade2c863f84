"""Prometheus metrics of one gateway app, in its own registry (so tests can build many apps)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The gateway's metrics.

    Label values are bounded: routes are path templates (``/v1/keys/{key_id:str}``), never
    raw paths, and unmatched paths share one label.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request start to the last response byte, seconds.",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.cache = Counter(
            "gateway_chain_cache",
            "Chain-read cache lookups (stake, subnet, spendable credit) by outcome.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "gateway_receipt_queue_depth",
            "Receipts queued and not yet recorded on chain.",
            registry=self.registry,
        )
        self.batches = Counter(
            "gateway_batches",
            "Receipt batches by outcome (recorded, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.batch_receipts = Counter(
            "gateway_batch_receipts",
            "Receipts recorded on chain.",
            registry=self.registry,
        )
        self.billed = Counter(
            "gateway_billed_requests",
            "Billed requests by outcome (charged, released).",
            ["outcome"],
            registry=self.registry,
        )
        self.settlements = Counter(
            "gateway_settlements",
            "Settlement transactions by outcome.",
            ["outcome"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """ASGI middleware counting requests and timing them by route template.

    Args:
        app: The next ASGI app.
        metrics: Where to count.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on and record its status and duration.

        Args:
            scope: ASGI scope.
            receive: ASGI receive.
            send: ASGI send.
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
