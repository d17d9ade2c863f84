"""Which gateway process records receipts: a lease with a fencing token.

With several gateway replicas on one Redis, every replica runs a recorder, but only the
holder of the lease cuts and records batches. The lease is a Redis key
``<ns>:recorder:lease`` holding ``<owner>:<token>`` with a TTL; each new holder draws a
fresh token from the counter ``<ns>:recorder:fence`` (``INCR``), so tokens only grow. The
recorder passes its :class:`Fence` to :meth:`~gateway._receipts.ReceiptQueue.create_batches`,
which checks it in the same Lua script that moves the cursor and creates the batches, and
checks it again (:meth:`RecorderLease.holds`) right before asking the signer to sign.

This is the fencing-token scheme of Kleppmann, "How to do distributed locking" (2016): a
holder paused past its TTL (GC, SIGSTOP) wakes up with a stale token, and the store refuses
its writes. A batch the stale holder cut before its pause stays ``open`` in Redis and the new
holder records it under the same signer idempotency key, so it is signed and mined once.

In memory mode (SQLite queue) the process holds an OS lock on the queue file
(:func:`gateway._sqlite.lock_queue_file`), so it is the only recorder: :class:`LocalLease`.
"""

from __future__ import annotations

import os
import secrets
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

__all__ = ["Fence", "LocalLease", "RecorderLease", "RedisLease"]


@dataclass(frozen=True)
class Fence:
    """Proof of holding the recorder lease, checked by the store before each write.

    Attributes:
        token: Fencing token (grows with every new holder).
        value: The lease record it stands for (``<owner>:<token>``); empty when there is
            nothing to check (one process).
    """

    token: int
    value: str = ""


class RecorderLease(ABC):
    """The recorder's right to cut and record batches."""

    @abstractmethod
    async def acquire(self) -> Fence | None:
        """Take the lease, or extend it when this process holds it already.

        Returns:
            The fence to write under, or None when another process holds the lease.
        """

    @abstractmethod
    async def holds(self, fence: Fence) -> bool:
        """Whether ``fence`` is still the current lease; extends it when so.

        Args:
            fence: From :meth:`acquire`.

        Returns:
            True if this process may go on writing under ``fence``.
        """

    async def release(self) -> None:  # noqa: B027 - optional hook
        """Give the lease up (on shutdown) so another replica takes over at once."""


class LocalLease(RecorderLease):
    """The lease of a single-process gateway: always held."""

    _FENCE = Fence(token=1)

    async def acquire(self) -> Fence | None:
        return self._FENCE

    async def holds(self, fence: Fence) -> bool:
        return True


_ACQUIRE_LUA = b"""
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""

_HOLDS_LUA = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LUA = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease(RecorderLease):
    """The lease in Redis, shared by every replica of one namespace.

    Args:
        redis: Asyncio Redis client.
        namespace: Key prefix (the gateway's ``redis_namespace``).
        ttl_s: Seconds the lease lasts without being extended; a holder that stops
            (crash, pause) is replaced this long after its last extension.
    """

    def __init__(self, redis: Redis, namespace: str, *, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease TTL must be positive")
        self._r: Any = redis
        self.key = f"{namespace}:recorder:lease"
        """Redis key of the lease record ``<owner>:<token>``."""
        self._counter = f"{namespace}:recorder:fence"
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        """This process's lease owner id (host/pid/random; no ``:``)."""
        self._acquire = self._r.register_script(_ACQUIRE_LUA)
        self._holds = self._r.register_script(_HOLDS_LUA)
        self._release = self._r.register_script(_RELEASE_LUA)
        self._held: str | None = None

    async def acquire(self) -> Fence | None:
        value = await self._acquire(keys=[self.key, self._counter], args=[self.owner, self._ttl_ms])
        if not value:
            self._held = None
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        self._held = text
        return Fence(token=int(text.rsplit(":", 1)[1]), value=text)

    async def holds(self, fence: Fence) -> bool:
        return bool(await self._holds(keys=[self.key], args=[fence.value, self._ttl_ms]))

    async def release(self) -> None:
        if self._held is not None:
            await self._release(keys=[self.key], args=[self._held])
            self._held = None
