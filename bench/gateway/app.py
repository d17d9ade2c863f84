"""The gateway plus a bare Litestar JSON endpoint, so both are measured in one server process."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post

from gateway import create_app


@post("/bench/bare", status_code=200)
async def bare(data: dict[str, Any]) -> dict[str, Any]:
    """The baseline: parse a JSON body, return a small JSON object. No auth, no billing."""
    return {"ok": True, "rows": data.get("rows", 1)}


def make_app() -> Litestar:
    """``uvicorn --factory bench.gateway.app:make_app`` (settings from ``TWOPM_GATEWAY_*``)."""
    return create_app(extra_route_handlers=[bare])
