"""The metrics middleware: requests counted and timed per route template, each series' labelled
children resolved once (``labels()`` is not called on every request)."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

from gateway._metrics import MAX_REQUEST_SERIES, Metrics, MetricsMiddleware


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200 if scope["path"] != "/x" else 404})
    await send({"type": "http.response.body", "body": b""})


def _serve(middleware: MetricsMiddleware, requests: list[tuple[str, str, str | None]]) -> None:
    async def go() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            pass

        for method, path, template in requests:
            scope = {"type": "http", "method": method, "path": path}
            if template is not None:
                scope["path_template"] = template
            await middleware(scope, receive, send)

    asyncio.run(go())


def _counting(metrics: Metrics) -> list[tuple[str, tuple[str, ...]]]:
    calls: list[tuple[str, tuple[str, ...]]] = []
    for name in ("requests", "latency"):
        family = getattr(metrics, name)
        labels = family.labels

        def counted(*values: str, _labels: Any = labels, _name: str = name) -> Any:
            calls.append((_name, values))
            return _labels(*values)

        family.labels = counted
    return calls


def test_each_series_resolves_its_labels_once_and_every_request_is_counted() -> None:
    metrics = Metrics()
    calls = _counting(metrics)
    middleware = MetricsMiddleware(_ok, metrics)
    _serve(
        middleware,
        [("GET", "/healthz", "/healthz")] * 5
        + [("POST", "/v1/keys", "/v1/keys")] * 3
        + [("GET", "/x", None)] * 2,
    )
    text = generate_latest(metrics.registry).decode()
    assert 'gateway_requests_total{method="GET",route="/healthz",status="200"} 5.0' in text
    assert 'gateway_requests_total{method="POST",route="/v1/keys",status="200"} 3.0' in text
    assert 'gateway_requests_total{method="GET",route="unmatched",status="404"} 2.0' in text
    assert 'gateway_request_duration_seconds_count{route="/healthz"} 5.0' in text
    assert 'gateway_request_duration_seconds_count{route="unmatched"} 2.0' in text
    # three series, two families each: six lookups for ten requests (twenty before)
    assert sorted(calls) == sorted(
        [
            ("requests", ("/healthz", "GET", "200")),
            ("latency", ("/healthz",)),
            ("requests", ("/v1/keys", "POST", "200")),
            ("latency", ("/v1/keys",)),
            ("requests", ("unmatched", "GET", "404")),
            ("latency", ("unmatched",)),
        ]
    )


def test_series_beyond_the_bound_are_still_counted_but_not_kept() -> None:
    metrics = Metrics()
    middleware = MetricsMiddleware(_ok, metrics)
    methods = [f"M{i}" for i in range(MAX_REQUEST_SERIES + 5)]
    _serve(middleware, [(m, "/healthz", "/healthz") for m in methods] + [("M0", "/healthz", None)])
    assert len(middleware._series) == MAX_REQUEST_SERIES
    text = generate_latest(metrics.registry).decode()
    last = methods[-1]
    assert f'gateway_requests_total{{method="{last}",route="/healthz",status="200"}} 1.0' in text
    assert f'gateway_request_duration_seconds_count{{route="/healthz"}} {len(methods)}.0' in text
