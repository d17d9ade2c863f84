"""Shared state behind one interface, on a Litestar ``Store``: memory or Redis.

Plain key/value records (sessions, SIWE nonces, API keys) go through the Litestar
:class:`~litestar.stores.base.Store`. The operations that must be atomic (consume a nonce,
take a rate-limit token, reserve credit, update a list) are methods of :class:`State`:
under one :class:`asyncio.Lock` in memory, and as a Lua script or a ``WATCH``/``MULTI``
transaction in Redis, so several gateway processes can share one Redis.
"""

from __future__ import annotations

import asyncio
import json
import math
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from gateway._autopipe import AutoPipeline
from gateway._errors import ServiceUnavailable

__all__ = ["CredentialGone", "MemoryState", "RedisState", "ReserveResult", "State"]


class CredentialGone(Exception):
    """The caller's session or API key record is gone at admission; nothing was reserved.

    Logged out, revoked or expired, possibly through another gateway process.
    """


T = TypeVar("T")


class ReserveResult:
    """Outcome of :meth:`State.reserve`.

    Attributes:
        ok: Whether the amount was reserved.
        outstanding_wei: Reserved plus unrecorded amount after the call (wei).
    """

    __slots__ = ("ok", "outstanding_wei")

    def __init__(self, ok: bool, outstanding_wei: int) -> None:
        self.ok = ok
        self.outstanding_wei = outstanding_wei


class State(ABC):
    """The gateway's shared state.

    Attributes:
        store: Namespaced Litestar store for plain records.
        rechecks_credentials: Whether :meth:`admit` checks ``credential`` atomically with
            the reservation, so callers of paid requests may be cached (see ``Auth``).
        shared: Whether other processes write this state too.
    """

    store: Store
    rechecks_credentials: bool = False
    shared: bool = False

    async def get(self, key: str) -> bytes | None:
        """Read a record of :attr:`store` on the hot path (no expiry renewal).

        Args:
            key: Record key.

        Returns:
            The value, or None when absent or expired.
        """
        return await self.store.get(key)

    @abstractmethod
    async def consume(self, key: str) -> bytes | None:
        """Read and delete a record in one atomic step (single-use nonces).

        Args:
            key: Record key in :attr:`store`.

        Returns:
            The value, or None when it was absent or expired (or already consumed).
        """

    @abstractmethod
    async def take_token(self, key: str, *, rate_per_s: float, burst: int, now_s: float) -> float:
        """Take one token from a token bucket that starts full.

        The bucket refills at ``rate_per_s`` up to ``burst`` tokens (the classic token
        bucket, e.g. Tanenbaum, *Computer Networks*, 5th ed., section 5.4.2).

        Args:
            key: Bucket id (one per address).
            rate_per_s: Refill rate, tokens per second.
            burst: Capacity in tokens.
            now_s: Current time in seconds (injectable clock).

        Returns:
            0.0 when a token was taken, otherwise the seconds until one is available.
        """

    @abstractmethod
    async def reserve(self, user: str, amount_wei: int, limit_wei: int) -> ReserveResult:
        """Add ``amount_wei`` to the user's outstanding amount if it stays within a limit.

        Args:
            user: Lower-case hex address.
            amount_wei: Price to reserve (wei), > 0.
            limit_wei: The most the outstanding amount may reach (wei).

        Returns:
            Whether it was reserved, and the outstanding amount afterwards.
        """

    async def admit(
        self,
        user: str,
        *,
        rate_per_s: float,
        burst: int,
        now_s: float,
        amount_wei: int,
        limit_wei: int,
        credential: str | None = None,
    ) -> tuple[float, ReserveResult | None]:
        """Take a rate-limit token, then reserve credit: :meth:`take_token` + :meth:`reserve`.

        Backends may do both in one round trip. Backends that :attr:`rechecks_credentials`
        first check that the record ``credential`` still exists, in the same atomic step;
        the others ignore it (their callers were just read from the store).

        Args:
            user: Lower-case hex address (bucket and reservation key).
            rate_per_s: Bucket refill rate, tokens per second.
            burst: Bucket capacity.
            now_s: Current time in seconds.
            amount_wei: Price to reserve (wei).
            limit_wei: The most the outstanding amount may reach (wei).
            credential: Store key of the caller's session or API key record.

        Returns:
            Seconds to wait (> 0: rate-limited, nothing reserved, result None), else 0.0 and
            the reservation's result.

        Raises:
            CredentialGone: The record is gone (re-checking backends only).
        """
        wait = await self.take_token(user, rate_per_s=rate_per_s, burst=burst, now_s=now_s)
        if wait > 0:
            return wait, None
        return 0.0, await self.reserve(user, amount_wei, limit_wei)

    @abstractmethod
    async def release(self, user: str, amount_wei: int) -> int:
        """Subtract ``amount_wei`` from the user's outstanding amount (never below 0).

        Args:
            user: Lower-case hex address.
            amount_wei: Amount to release (wei).

        Returns:
            The outstanding amount afterwards (wei).
        """

    @abstractmethod
    async def release_batch(self, batch_key: str, amounts: dict[str, int]) -> bool:
        """Release a recorded (or failed) batch's amounts once, however often it is called.

        The recorder calls this before it marks the batch finished in the queue; after a
        crash in between it resumes the batch and calls it again, which then does nothing.

        Args:
            batch_key: The batch's key.
            amounts: Lower-case address -> wei to subtract (never below 0).

        Returns:
            True if this call released them, False if an earlier call had.
        """

    @abstractmethod
    async def outstanding(self, user: str) -> int:
        """Reserved plus queued-but-unrecorded amount of a user (wei).

        Args:
            user: Lower-case hex address.

        Returns:
            The amount in wei.
        """

    @abstractmethod
    async def update_json(
        self, key: str, fn: Callable[[Any], Any], *, expires_in_s: int | None = None
    ) -> Any:
        """Atomically read a JSON record, apply ``fn``, and write the result.

        Args:
            key: Record key in :attr:`store`.
            fn: Maps the current value (None when absent) to the new value; may raise to
                abort without writing.
            expires_in_s: TTL of the written record; None keeps it forever.

        Returns:
            The new value.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryState(State):
    """State for one process: a Litestar store plus bounded dicts.

    The gateway gives it a :class:`~gateway._sqlite_store.SqliteStore` in the receipt
    queue's file, so sessions, API keys and nonces survive a restart; outstanding amounts
    are rebuilt from the queue (:meth:`seed_outstanding`), and token buckets start full.

    Args:
        bucket_max_entries: Most token buckets kept; the least recently used is evicted
            (it then starts full again, which only ever favours the caller).
        store: Records store; a Litestar ``MemoryStore`` (lost on exit) by default.
    """

    def __init__(self, *, bucket_max_entries: int = 100_000, store: Store | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        self._lock = asyncio.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._bucket_max = bucket_max_entries
        # Only users with a non-zero outstanding amount are kept, so this is bounded by
        # the number of unrecorded receipts, which the queue bounds.
        self._outstanding: dict[str, int] = {}
        # Keys of released batches; a restart forgets them, and rebuilds the outstanding
        # amounts from the queue, in which an unfinished batch is still unrecorded.
        self._released: OrderedDict[str, None] = OrderedDict()
        self._released_max = 10_000

    async def consume(self, key: str) -> bytes | None:
        async with self._lock:
            value = await self.store.get(key)
            if value is not None:
                await self.store.delete(key)
            return value

    async def take_token(self, key: str, *, rate_per_s: float, burst: int, now_s: float) -> float:
        async with self._lock:
            tokens, last = self._buckets.pop(key, (float(burst), now_s))
            tokens = min(float(burst), tokens + max(0.0, now_s - last) * rate_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate_per_s
            self._buckets[key] = (tokens, now_s)
            while len(self._buckets) > self._bucket_max:
                self._buckets.popitem(last=False)
            return wait

    async def reserve(self, user: str, amount_wei: int, limit_wei: int) -> ReserveResult:
        async with self._lock:
            current = self._outstanding.get(user, 0)
            if current + amount_wei > limit_wei:
                return ReserveResult(False, current)
            self._outstanding[user] = current + amount_wei
            return ReserveResult(True, current + amount_wei)

    def _subtract(self, user: str, amount_wei: int) -> int:
        """Lower a user's outstanding amount, never below 0 (caller holds the lock)."""
        left = max(0, self._outstanding.get(user, 0) - amount_wei)
        if left:
            self._outstanding[user] = left
        else:
            self._outstanding.pop(user, None)
        return left

    async def release(self, user: str, amount_wei: int) -> int:
        async with self._lock:
            return self._subtract(user, amount_wei)

    async def release_batch(self, batch_key: str, amounts: dict[str, int]) -> bool:
        async with self._lock:
            if batch_key in self._released:
                return False
            self._released[batch_key] = None
            while len(self._released) > self._released_max:
                self._released.popitem(last=False)
            for user, amount in amounts.items():
                self._subtract(user, amount)
            return True

    async def outstanding(self, user: str) -> int:
        return self._outstanding.get(user, 0)

    async def seed_outstanding(self, totals: dict[str, int]) -> None:
        """Set outstanding amounts from the durable queue after a restart.

        Args:
            totals: Lower-case address -> unrecorded amount (wei).
        """
        async with self._lock:
            self._outstanding = {u: a for u, a in totals.items() if a > 0}

    async def update_json(
        self, key: str, fn: Callable[[Any], Any], *, expires_in_s: int | None = None
    ) -> Any:
        async with self._lock:
            raw = await self.store.get(key)
            new = fn(None if raw is None else json.loads(raw))
            await self.store.set(key, json.dumps(new), expires_in=expires_in_s)
            return new


_TAKE_LUA = b"""
local function take(key, rate, burst, now, ttl)
  local tokens = burst
  local last = now
  local v = redis.call('HMGET', key, 't', 'l')
  if v[1] then
    tokens = tonumber(v[1])
    last = tonumber(v[2])
  end
  local elapsed = now - last
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tokens + elapsed * rate)
  local wait = 0
  if tokens >= 1 then
    tokens = tokens - 1
  else
    wait = (1 - tokens) / rate
  end
  redis.call('HSET', key, 't', tostring(tokens), 'l', tostring(now))
  redis.call('EXPIRE', key, ttl)
  return wait
end
"""

_TOKEN_BUCKET_LUA = (
    _TAKE_LUA
    + b"""
return tostring(take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                     tonumber(ARGV[4])))
"""
)


# Exact arithmetic on non-negative decimal strings: wei amounts exceed Lua's 53-bit doubles and
# Redis's 64-bit INCRBY, and a script keeps check-and-add to one atomic round trip. Numbers of
# up to 15 digits are added as doubles (a sum below 2 * 10^15 < 2^53 is exact); longer ones in
# limbs of 14 decimal digits (a limb sum with its carry stays below 2 * 10^14, exact too), the
# schoolbook method of Knuth, TAOCP vol. 2, 4.3.1, algorithms A and S in radix 10^14. Digit by
# digit, as this was before, the admission script cost Redis 166k-184k instructions, in limbs
# 130k-136k (callgrind on a private redis-server 7.0, 2,000 EVALSHA each, an outstanding
# amount of 19 digits; prices of 1 and of 10^15 wei).
_DECIMAL_LUA = b"""
local function norm(a)
  a = string.gsub(a, "^0+", "")
  if a == "" then return "0" end
  return a
end
local function cmp(a, b)
  if #a ~= #b then if #a < #b then return -1 else return 1 end end
  if a == b then return 0 end
  if a < b then return -1 else return 1 end
end
local function limbs(a)
  local t, i = {}, #a
  while i > 0 do
    local j = i - 13
    if j < 1 then j = 1 end
    t[#t + 1] = tonumber(string.sub(a, j, i))
    i = j - 1
  end
  return t
end
local function unlimbs(t)
  local n = #t
  while n > 1 and t[n] == 0 do n = n - 1 end
  local out = {string.format('%d', t[n])}
  for k = n - 1, 1, -1 do out[#out + 1] = string.format('%014d', t[k]) end
  return table.concat(out)
end
local function add(a, b)
  if #a < 16 and #b < 16 then return string.format('%d', tonumber(a) + tonumber(b)) end
  local x, y, out, carry = limbs(a), limbs(b), {}, 0
  for k = 1, math.max(#x, #y) do
    local s = (x[k] or 0) + (y[k] or 0) + carry
    if s >= 1e14 then s = s - 1e14; carry = 1 else carry = 0 end
    out[k] = s
  end
  if carry > 0 then out[#out + 1] = carry end
  return unlimbs(out)
end
-- a - b for a >= b (callers compare first)
local function sub(a, b)
  if #a < 16 then return string.format('%d', tonumber(a) - tonumber(b)) end
  local x, y, out, borrow = limbs(a), limbs(b), {}, 0
  for k = 1, #x do
    local s = x[k] - (y[k] or 0) - borrow
    if s < 0 then s = s + 1e14; borrow = 1 else borrow = 0 end
    out[k] = s
  end
  return unlimbs(out)
end
"""

_RESERVE_LUA = (
    _DECIMAL_LUA
    + b"""
local cur = norm(redis.call('GET', KEYS[1]) or '0')
local new = add(cur, norm(ARGV[1]))
if cmp(new, norm(ARGV[2])) > 0 then return {0, cur} end
redis.call('SET', KEYS[1], new)
return {1, new}
"""
)

# Lower an outstanding amount (a decimal string), never below 0; returns what is left.
_SUBTRACT_LUA = (
    _DECIMAL_LUA
    + b"""
local function subtract(key, amount)
  local cur = norm(redis.call('GET', key) or '0')
  amount = norm(amount)
  if cmp(cur, amount) <= 0 then
    redis.call('DEL', key)
    return '0'
  end
  local left = sub(cur, amount)
  redis.call('SET', key, left)
  return left
end
"""
)

_RELEASE_LUA = _SUBTRACT_LUA + b"return subtract(KEYS[1], ARGV[1])\n"


_RELEASE_BATCH_LUA = (
    _SUBTRACT_LUA
    + b"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
for i = 2, #KEYS do subtract(KEYS[i], ARGV[i]) end
return 1
"""
)

_RELEASED_MARKER_TTL_S = 30 * 86_400
"""How long Redis remembers that a batch was released (longer than any recorder outage)."""

_ADMIT_LUA = (
    _DECIMAL_LUA
    + _TAKE_LUA
    + b"""
if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 0 then return {'gone', 0, '0'} end
local wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                  tonumber(ARGV[4]))
if wait > 0 then return {tostring(wait), 0, '0'} end
local cur = norm(redis.call('GET', KEYS[2]) or '0')
local new = add(cur, norm(ARGV[5]))
if cmp(new, norm(ARGV[6])) > 0 then return {'0', 0, cur} end
redis.call('SET', KEYS[2], new)
return {'0', 1, new}
"""
)


class RedisState(State):
    """State shared by any number of gateway processes through one Redis.

    Args:
        redis: An asyncio Redis client (``decode_responses=False``).
        namespace: Key prefix of every key written.
    """

    rechecks_credentials = True
    shared = True

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis: Any = redis  # redis-py's stubs type replies as bytes | str
        self.namespace = namespace
        self.store = RedisStore(redis, namespace=namespace)
        self._bucket = redis.register_script(_TOKEN_BUCKET_LUA)
        self._reserve = redis.register_script(_RESERVE_LUA)
        self._release = redis.register_script(_RELEASE_LUA)
        self._admit = redis.register_script(_ADMIT_LUA)
        self._release_batch = redis.register_script(_RELEASE_BATCH_LUA)
        self.pipe = AutoPipeline(redis)
        """Hot-path commands (session reads, admission, receipt appends) share round trips."""

    @classmethod
    def from_url(cls, url: str, namespace: str) -> RedisState:
        """Connect to Redis at ``url``.

        Args:
            url: ``redis://host:port/db``.
            namespace: Key prefix.

        Returns:
            The state (connections are opened lazily).
        """
        return cls(Redis.from_url(url, decode_responses=False), namespace)

    def key(self, name: str) -> str:
        """Full Redis key of a record, as the Litestar store names it.

        Args:
            name: Record key.

        Returns:
            ``<namespace>:<name>``.
        """
        return f"{self.namespace}:{name}"

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.pipe.execute("GET", self.key(key))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return None if value is None else bytes(value)

    async def consume(self, key: str) -> bytes | None:
        try:
            value = await self.redis.getdel(self.key(key))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        if value is None:
            return None
        # Litestar's RedisStore stores raw bytes, so this is the value as set.
        return bytes(value)

    async def take_token(self, key: str, *, rate_per_s: float, burst: int, now_s: float) -> float:
        idle_ttl_s = max(1, math.ceil(burst / rate_per_s) + 1)  # full again by then
        try:
            wait = await self._bucket(
                keys=[self.key("bucket:" + key)],
                args=[repr(rate_per_s), burst, repr(now_s), idle_ttl_s],
            )
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return float(wait)

    async def _transact(self, key: str, fn: Callable[[bytes | None], tuple[bytes | None, T]]) -> T:
        """Optimistic transaction: WATCH key, compute in Python, MULTI/SET/EXEC, retry."""
        full = self.key(key)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(full)
                        current = await pipe.get(full)
                        new, result = fn(current)
                        pipe.multi()
                        if new is None:
                            pipe.delete(full)
                        else:
                            pipe.set(full, new)
                        await pipe.execute()
                        return result
                    except WatchError:
                        continue
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc

    async def reserve(self, user: str, amount_wei: int, limit_wei: int) -> ReserveResult:
        if amount_wei < 0 or limit_wei < 0:
            raise ValueError("amounts are non-negative")
        try:
            ok, value = await self._reserve(
                keys=[self.key("outstanding:" + user)], args=[str(amount_wei), str(limit_wei)]
            )
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return ReserveResult(bool(ok), int(value))

    async def admit(
        self,
        user: str,
        *,
        rate_per_s: float,
        burst: int,
        now_s: float,
        amount_wei: int,
        limit_wei: int,
        credential: str | None = None,
    ) -> tuple[float, ReserveResult | None]:
        idle_ttl_s = max(1, math.ceil(burst / rate_per_s) + 1)
        ns = self.namespace
        keys = [f"{ns}:bucket:{user}", f"{ns}:outstanding:{user}"]  # as self.key() names them
        if credential is not None:
            keys.append(f"{ns}:{credential}")
        try:
            wait, ok, value = await self.pipe.evalsha(
                self._admit,
                keys=keys,
                args=[
                    repr(rate_per_s),
                    burst,
                    repr(now_s),
                    idle_ttl_s,
                    str(amount_wei),
                    str(limit_wei),
                ],
            )
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        if wait == b"gone":
            raise CredentialGone(credential)
        wait_s = float(wait)
        if wait_s > 0:
            return wait_s, None
        return 0.0, ReserveResult(bool(ok), int(value))

    async def release(self, user: str, amount_wei: int) -> int:
        try:
            left = await self._release(
                keys=[self.key("outstanding:" + user)], args=[str(max(0, amount_wei))]
            )
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return int(left)

    async def release_batch(self, batch_key: str, amounts: dict[str, int]) -> bool:
        users = list(amounts)
        try:
            done = await self._release_batch(
                keys=[self.key("released:" + batch_key)]
                + [self.key("outstanding:" + u) for u in users],
                args=[_RELEASED_MARKER_TTL_S] + [str(max(0, amounts[u])) for u in users],
            )
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return bool(done)

    async def outstanding(self, user: str) -> int:
        try:
            raw = await self.redis.get(self.key("outstanding:" + user))
        except RedisError as exc:
            raise ServiceUnavailable("the state store is unreachable") from exc
        return int(raw or 0)

    async def update_json(
        self, key: str, fn: Callable[[Any], Any], *, expires_in_s: int | None = None
    ) -> Any:
        def step(raw: bytes | None) -> tuple[bytes | None, Any]:
            new = fn(None if raw is None else json.loads(raw))
            return (json.dumps(new).encode(), new)

        result = await self._transact(key, step)
        if expires_in_s is not None:
            await self.redis.expire(self.key(key), expires_in_s)
        return result

    async def close(self) -> None:
        await self.pipe.aclose()
        await self.redis.aclose()
