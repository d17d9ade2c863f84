"""The test helper that wipes a stack's Redis namespace deletes its keys and only its keys (the
stack tests and the gateway's Redis backend share one Redis with other runs)."""

from __future__ import annotations

import uuid

import pytest
import redis
from service_support import drop_redis_namespace

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_only_the_namespace_keys_are_deleted_and_none_deletes_nothing() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    ours = f"twopm-ops-test-{uuid.uuid4().hex[:12]}"
    other = f"twopm-ops-test-{uuid.uuid4().hex[:12]}"
    try:
        client.set(f"{ours}:session:a", b"1")
        client.hset(f"{ours}:recorder:lease", "holder", "x")
        client.xadd(f"{ours}:receipts", {"r": "1"})
        client.set(f"{other}:session:a", b"1")
        assert drop_redis_namespace(REDIS_URL, None) == 0
        assert drop_redis_namespace(REDIS_URL, ours) == 3
        assert list(client.scan_iter(match=f"{ours}*")) == []
        assert client.get(f"{other}:session:a") == b"1"
        assert drop_redis_namespace(REDIS_URL, ours) == 0
    finally:
        client.delete(f"{other}:session:a", f"{ours}:session:a")
        client.close()
