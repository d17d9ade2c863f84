"""The public-context store on both backends: TTL, bounds, refresh (memory with a test clock,
Redis real)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from gateway._contexts import MemoryContextStore, RedisContextStore, context_store_for
from gateway._settings import GatewaySettings
from gateway._state import MemoryState, RedisState

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def namespace() -> Iterator[str]:
    ns = f"twopm-ctx-test-{uuid.uuid4().hex[:12]}"
    yield ns
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{ns}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_memory_context_expires_after_its_ttl_and_a_reupload_refreshes_it() -> None:
    clock = Clock()
    store = MemoryContextStore(ttl_s=60, max_entries=10, max_bytes=10_000, clock=clock)

    async def run() -> None:
        await store.put("a", b"x" * 10)
        clock.now_s += 59
        assert await store.get("a") == b"x" * 10
        await store.put("a", b"x" * 10)  # uploaded again: 60 s more
        clock.now_s += 59
        assert await store.exists("a")
        clock.now_s += 2
        assert await store.get("a") is None and not await store.exists("a")
        assert len(store) == 0 and store.total_bytes == 0

    asyncio.run(run())


def test_a_memory_store_evicts_the_least_recently_used_beyond_its_count_and_byte_bounds() -> None:
    store = MemoryContextStore(ttl_s=60, max_entries=3, max_bytes=100, clock=Clock())

    async def run() -> None:
        for name in "abc":
            await store.put(name, b"." * 10)
        await store.get("a")  # a is now the most recently used
        await store.put("d", b"." * 10)
        assert [await store.exists(n) for n in "abcd"] == [True, False, True, True]
        await store.put("e", b"." * 90)  # 130 bytes: drop the oldest until <= 100
        assert len(store) <= 3 and store.total_bytes <= 100
        assert await store.exists("e")

    asyncio.run(run())


def test_a_redis_context_expires_after_its_ttl(namespace: str) -> None:
    async def run() -> None:
        state = RedisState.from_url(REDIS_URL, namespace)
        store = RedisContextStore(state, ttl_s=1, max_entries=10)
        await store.put("a", b"blob")
        assert await store.get("a") == b"blob"
        time.sleep(1.2)
        assert await store.get("a") is None and not await store.exists("a")
        await state.close()

    asyncio.run(run())


def test_a_redis_store_keeps_at_most_its_bound(namespace: str) -> None:
    async def run() -> None:
        state = RedisState.from_url(REDIS_URL, namespace)
        store = RedisContextStore(state, ttl_s=60, max_entries=2)
        for name in "abc":
            await store.put(name, name.encode())
            await asyncio.sleep(0.01)
        present = [await store.exists(n) for n in "abc"]
        assert present == [False, True, True]
        await state.close()

    asyncio.run(run())


def test_a_redis_store_outage_is_a_503(namespace: str) -> None:
    from gateway import ServiceUnavailable

    async def run() -> None:
        state = RedisState.from_url("redis://127.0.0.1:1/0", namespace)
        store = RedisContextStore(state, ttl_s=60, max_entries=2)
        with pytest.raises(ServiceUnavailable):
            await store.put("a", b"x")
        with pytest.raises(ServiceUnavailable):
            await store.exists("a")
        await state.close()

    asyncio.run(run())


def test_the_store_follows_the_state_backend(namespace: str) -> None:
    settings = GatewaySettings(he_context_ttl_s=5, he_context_max_entries=3)
    memory = context_store_for(MemoryState(), settings)
    assert isinstance(memory, MemoryContextStore) and memory.ttl_s == 5
    shared = context_store_for(RedisState.from_url(REDIS_URL, namespace), settings)
    assert isinstance(shared, RedisContextStore) and shared.ttl_s == 5
