from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from gateway_support import PUBLIC_URL

from gateway import GatewaySettings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Settings overrides for one backend; Redis gets a fresh namespace, wiped afterwards."""
    if request.param == "memory":
        yield {"queue_path": tmp_path / "receipts.sqlite3"}
        return
    namespace = f"twopm-test-{uuid.uuid4().hex[:12]}"
    yield {"redis_url": REDIS_URL, "redis_namespace": namespace}
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def base_settings(backend: dict[str, object]) -> GatewaySettings:
    return GatewaySettings(public_url=PUBLIC_URL, recorder_enabled=False).with_(**backend)
