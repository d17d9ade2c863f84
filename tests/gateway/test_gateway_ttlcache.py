"""The chain-read cache: expiry, bounds, single-flight loads and invalidation during a load."""

from __future__ import annotations

import asyncio

import pytest

from gateway._cache import TTLCache


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Loader:
    """A load that waits until released, counting its calls (the 'chain')."""

    def __init__(self, value: int = 7) -> None:
        self.calls = 0
        self.value = value
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        await self.release.wait()
        return self.value


def test_entries_expire_and_the_bound_evicts_the_least_recently_used() -> None:
    clock = _Clock()
    cache: TTLCache[str, int] = TTLCache(2, 5.0, clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    clock.now = 5.0
    assert cache.get("a") is None and len(cache) == 1


def test_concurrent_misses_share_one_load() -> None:
    async def main() -> tuple[list[tuple[int, bool]], int, tuple[int, bool]]:
        cache: TTLCache[str, int] = TTLCache(10, 60.0)
        loader = _Loader()
        waiting = [asyncio.ensure_future(cache.get_or_load("k", loader)) for _ in range(16)]
        await asyncio.sleep(0)
        loader.release.set()
        results = await asyncio.gather(*waiting)
        return results, loader.calls, await cache.get_or_load("k", loader)

    results, calls, after = asyncio.run(main())
    assert calls == 1
    assert results == [(7, False)] * 16
    assert after == (7, True)


def test_a_drop_during_a_load_keeps_its_value_out_of_the_cache() -> None:
    async def main() -> tuple[int, int, int]:
        cache: TTLCache[str, int] = TTLCache(10, 60.0)
        stale = _Loader(value=1)
        first = asyncio.ensure_future(cache.get_or_load("k", stale))
        await asyncio.sleep(0)
        cache.drop("k")  # an event: the value being read may predate it
        fresh = _Loader(value=2)
        second = asyncio.ensure_future(cache.get_or_load("k", fresh))  # must not join the old load
        await asyncio.sleep(0)
        stale.release.set()
        fresh.release.set()
        (old, _), (new, _) = await asyncio.gather(first, second)
        unused = _Loader(value=3)
        unused.release.set()
        value, _ = await cache.get_or_load("k", unused)  # the fresh value, from the cache
        return old, new, value

    assert asyncio.run(main()) == (1, 2, 2)


def test_a_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    async def main() -> int:
        cache: TTLCache[str, int] = TTLCache(10, 60.0)
        gate = asyncio.Event()

        async def failing() -> int:
            await gate.wait()
            raise RuntimeError("chain down")

        waiting = [asyncio.ensure_future(cache.get_or_load("k", failing)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        loader = _Loader()
        loader.release.set()
        value, hit = await cache.get_or_load("k", loader)
        assert not hit
        return value

    assert asyncio.run(main()) == 7


def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    async def main() -> tuple[int, bool]:
        cache: TTLCache[str, int] = TTLCache(10, 60.0)
        loader = _Loader()
        first = asyncio.ensure_future(cache.get_or_load("k", loader))
        second = asyncio.ensure_future(cache.get_or_load("k", loader))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        loader.release.set()
        value, _ = await second
        assert loader.calls == 1
        return value, (await cache.get_or_load("k", loader))[1]

    assert asyncio.run(main()) == (7, True)
