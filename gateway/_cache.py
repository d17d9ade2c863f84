"""A bounded, expiring, single-flight cache for the gateway's hot-path reads.

Used for chain reads (stake, subnet, spendable credit; ``gateway._chain``) and the callers of
paid requests (``gateway._auth``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A bounded least-recently-used cache whose entries expire.

    :meth:`get_or_load` coalesces concurrent misses of one key into one load (single
    flight), and does not cache a value whose load overlapped a :meth:`drop` or
    :meth:`clear`: an event that invalidates an entry also beats a read started before it.

    Args:
        max_entries: Most entries kept; the least recently used is evicted first.
        ttl_s: Seconds an entry is served after it was stored.
        clock: Monotonic clock in seconds (injectable).
    """

    def __init__(
        self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._loading: dict[K, tuple[int, asyncio.Future[V]]] = {}  # (epoch, load) per key
        self._epoch = 0  # bumped by drop/clear; a load that saw another epoch is not kept

    def get(self, key: K) -> V | None:
        """A live entry or None.

        Args:
            key: Cache key.

        Returns:
            The value, or None when absent or expired.
        """
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: K, value: V) -> None:
        """Store a value for ``ttl_s``.

        Args:
            key: Cache key.
            value: Value.
        """
        self._data[key] = (self._clock() + self._ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """A live entry, or the result of one ``load()`` shared by every concurrent miss.

        Args:
            key: Cache key.
            load: Fetches the value (called at most once per key at a time).

        Returns:
            The value and whether it came from the cache.

        Raises:
            Exception: Whatever ``load`` raised, to every caller waiting on it (nothing is
                cached then).
        """
        cached = self.get(key)
        if cached is not None:
            return cached, True
        entry = self._loading.get(key)
        pending: asyncio.Future[V]
        if entry is None or entry[0] != self._epoch:  # none, or started before a drop
            pending = asyncio.ensure_future(self._load(key, load, self._epoch))
            self._loading[key] = (self._epoch, pending)
        else:
            pending = entry[1]
        # shield: a cancelled caller must not cancel the load the others wait for
        return await asyncio.shield(pending), False

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], epoch: int) -> V:
        try:
            value = await load()
            if epoch == self._epoch:
                self.put(key, value)
            return value
        finally:
            entry = self._loading.get(key)
            if entry is not None and entry[1] is asyncio.current_task():
                del self._loading[key]

    def drop(self, key: K) -> None:
        """Forget an entry (and keep no load already in flight).

        Args:
            key: Cache key.
        """
        self._epoch += 1
        self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything (and keep no load already in flight)."""
        self._epoch += 1
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
