"""Prometheus metrics of one gateway app, in its own registry (so tests can build many apps)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
MAX_REQUEST_SERIES = 1024
"""Most (route, method, status) series whose labelled children the middleware keeps; beyond
it (e.g. odd methods) a request resolves its labels each time, counted all the same."""


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
        # Cache lookups happen several times per request: plain ints, read at scrape time.
        self.cache_counts: dict[tuple[str, str], int] = {}
        self.registry.register(_CacheCollector(self.cache_counts))
        self.queue_depth = Gauge(
            "gateway_receipt_queue_depth",
            "Receipts queued and not yet recorded on chain.",
            registry=self.registry,
        )
        self.recorder_leader = Gauge(
            "gateway_recorder_leader",
            "1 while this process holds the recorder lease (records batches), else 0.",
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
        self.billed_charged = self.billed.labels("charged")
        self.billed_released = self.billed.labels("released")
        self.settlements = Counter(
            "gateway_settlements",
            "Settlement transactions by outcome.",
            ["outcome"],
            registry=self.registry,
        )


class _CacheCollector(Collector):
    """Exposes :attr:`Metrics.cache_counts` as ``gateway_chain_cache_total{kind,result}``."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield the counter family.

        Yields:
            One ``CounterMetricFamily`` with a sample per (kind, result).
        """
        family = CounterMetricFamily(
            "gateway_chain_cache",
            "Chain-read cache lookups (stake, subnet, spendable credit) by outcome.",
            labels=["kind", "result"],
        )
        for (kind, result), value in sorted(self._counts.items()):
            family.add_metric([kind, result], value)
        yield family


class MetricsMiddleware:
    """ASGI middleware counting requests and timing them by route template.

    Args:
        app: The next ASGI app.
        metrics: Where to count.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # (route, method, status) -> (request counter child, latency histogram child): each
        # ``labels()`` takes a lock and builds a key, so a request resolves both once per series
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def _children(self, route: str, method: str, status: str) -> tuple[Any, Any]:
        key = (route, method, status)
        children = self._series.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(route, method, status),
                self.metrics.latency.labels(route),
            )
            if len(self._series) < MAX_REQUEST_SERIES:
                self._series[key] = children
        return children

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
            count, latency = self._children(route, scope["method"], str(status[0]))
            count.inc()
            latency.observe(time.perf_counter() - start)
