"""Uploaded public CKKS contexts by id, with a TTL and a bound.

One store per state backend (memory, Redis), chosen by :func:`context_store_for`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from redis.exceptions import RedisError

from gateway._errors import ServiceUnavailable
from gateway._settings import GatewaySettings
from gateway._state import RedisState, State

__all__ = ["ContextStore", "MemoryContextStore", "RedisContextStore", "context_store_for"]


class ContextStore(ABC):
    """Uploaded public CKKS contexts by id (sha256 hex), with a TTL and a bound."""

    ttl_s: int

    @abstractmethod
    async def put(self, context_id: str, blob: bytes) -> None:
        """Store (or refresh) a validated context for ``ttl_s`` seconds.

        Args:
            context_id: sha256 hex of ``blob``.
            blob: The context frame.

        Raises:
            ServiceUnavailable: The store is unreachable.
        """

    @abstractmethod
    async def get(self, context_id: str) -> bytes | None:
        """A stored context's bytes.

        Args:
            context_id: sha256 hex.

        Returns:
            The bytes, or None when unknown or expired.

        Raises:
            ServiceUnavailable: The store is unreachable.
        """

    @abstractmethod
    async def exists(self, context_id: str) -> bool:
        """Whether the context is stored and not expired.

        Args:
            context_id: sha256 hex.

        Returns:
            True if present.

        Raises:
            ServiceUnavailable: The store is unreachable.
        """


class MemoryContextStore(ContextStore):
    """Contexts in this process: LRU bounded by count and by total bytes, with a TTL.

    Args:
        ttl_s: Seconds a context is kept after its last upload.
        max_entries: Most contexts kept.
        max_bytes: Most bytes kept in total (a row-layout context is about 1.5 MB).
        clock: Monotonic clock in seconds (injectable).
    """

    def __init__(
        self,
        ttl_s: int,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max(1, max_entries)
        self._max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def _drop(self, context_id: str) -> None:
        item = self._items.pop(context_id, None)
        if item is not None:
            self._bytes -= len(item[1])

    async def put(self, context_id: str, blob: bytes) -> None:
        self._drop(context_id)
        self._items[context_id] = (self._clock() + self.ttl_s, blob)
        self._bytes += len(blob)
        while len(self._items) > self._max_entries or (
            self._bytes > self._max_bytes and len(self._items) > 1
        ):
            oldest = next(iter(self._items))
            self._drop(oldest)

    async def get(self, context_id: str) -> bytes | None:
        item = self._items.get(context_id)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(context_id)
            return None
        self._items.move_to_end(context_id)
        return item[1]

    async def exists(self, context_id: str) -> bool:
        return await self.get(context_id) is not None


class RedisContextStore(ContextStore):
    """Contexts in Redis, shared by gateway processes: each key expires; an index bounds them.

    The index is a sorted set of ids scored by expiry time; each upload trims expired ids
    and evicts the soonest-expiring ones beyond ``max_entries``.

    Args:
        state: The gateway's Redis state (client and key namespace).
        ttl_s: Seconds a context is kept after its last upload.
        max_entries: Most contexts kept.
    """

    def __init__(self, state: RedisState, ttl_s: int, max_entries: int) -> None:
        self.redis = state.redis
        self._key = state.key
        self.ttl_s = ttl_s
        self._max_entries = max(1, max_entries)
        self._index = state.key("he:ctx-index")

    def _ctx(self, context_id: str) -> str:
        return self._key("he:ctx:" + context_id)

    async def put(self, context_id: str, blob: bytes) -> None:
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._ctx(context_id), blob, ex=self.ttl_s)
                pipe.zadd(self._index, {context_id: now + self.ttl_s})
                pipe.zremrangebyscore(self._index, "-inf", now)
                pipe.zcard(self._index)
                *_, count = await pipe.execute()
            excess = int(count) - self._max_entries
            if excess > 0:
                victims = await self.redis.zpopmin(self._index, excess)
                ids = [v[0].decode() if isinstance(v[0], bytes) else str(v[0]) for v in victims]
                if ids:
                    await self.redis.delete(*(self._ctx(i) for i in ids))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc

    async def get(self, context_id: str) -> bytes | None:
        try:
            value = await self.redis.get(self._ctx(context_id))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return None if value is None else bytes(value)

    async def exists(self, context_id: str) -> bool:
        try:
            return bool(await self.redis.exists(self._ctx(context_id)))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc


def context_store_for(state: State, settings: GatewaySettings) -> ContextStore:
    """The context store matching the gateway's state backend.

    Args:
        state: Memory or Redis state.
        settings: TTL and bounds.

    Returns:
        A Redis store when the state is in Redis, else a memory store.
    """
    if isinstance(state, RedisState):
        return RedisContextStore(state, settings.he_context_ttl_s, settings.he_context_max_entries)
    return MemoryContextStore(
        settings.he_context_ttl_s, settings.he_context_max_entries, settings.he_context_max_bytes
    )
