"""A Litestar ``Store`` in SQLite, and the OS lock that makes memory mode one process.

Litestar ships memory, file (one file per key, unbounded), Redis and Valkey stores
(``litestar.stores``); none keeps records in a SQLite file with a bound, so memory mode
had its sessions, API keys and SIWE nonces in a ``MemoryStore`` and lost them on every
restart. :class:`SqliteStore` implements :class:`litestar.stores.base.Store` on a table
``kv`` of the receipt queue's SQLite file (WAL, ``synchronous=NORMAL``: a committed write
survives a crash of the process, https://sqlite.org/wal.html), so a restart, even after
SIGKILL, keeps everything a user holds.

:func:`lock_queue_file` takes an exclusive ``flock(2)`` on ``<queue file>.lock`` for the
life of the process: a second gateway on the same file refuses to start instead of racing
the first one's recorder.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from litestar.stores.base import Store

from gateway._errors import ConfigurationError

__all__ = ["SqliteStore", "lock_queue_file"]


def lock_queue_file(path: Path) -> int:
    """Hold an exclusive lock on ``<path>.lock`` (``fcntl.flock``, non-blocking).

    The lock lives as long as the returned descriptor stays open (the kernel drops it when
    the process dies, however it dies).

    Args:
        path: The SQLite queue file.

    Returns:
        The open descriptor of the lock file (close it to release the lock).

    Raises:
        ConfigurationError: Another process holds the lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigurationError(
            f"another gateway process is using the receipt queue {path}: memory mode is one "
            "process (set TWOPM_GATEWAY_REDIS_URL to run several replicas)"
        ) from None
    return fd


def _seconds(expires_in: int | timedelta | None) -> float | None:
    if expires_in is None:
        return None
    return expires_in.total_seconds() if isinstance(expires_in, timedelta) else float(expires_in)


class SqliteStore(Store):
    """Key/value records with expiry in a SQLite table, bounded.

    Every call runs synchronously on the event loop thread (a primary-key lookup or one
    small write, a few microseconds), like the queue's commits on the same connection, so
    calls never interleave and each is atomic.

    Bound: past ``max_entries`` records, expired ones are deleted, then the records with
    the earliest expiry; records without an expiry (API keys, bounded per owner by
    ``max_keys_per_owner``) are never evicted.

    Args:
        db: Connection in autocommit mode (``isolation_level=None``), WAL.
        max_entries: Bound of the number of records.
        now_s: Clock (Unix seconds).
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        max_entries: int = 100_000,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._db = db
        self._now = now_s
        self.max_entries = max_entries
        db.execute(
            "CREATE TABLE IF NOT EXISTS kv ("
            " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS kv_expiry ON kv(expires_at)")
        self._count = int(db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else bytes(value)
        ttl = _seconds(expires_in)
        expires_at = None if ttl is None else self._now() + ttl
        existed = self._db.execute("SELECT 1 FROM kv WHERE key=?", (key,)).fetchone()
        self._db.execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value, expires_at=excluded.expires_at",
            (key, data, expires_at),
        )
        if existed is None:
            self._count += 1
            if self._count > self.max_entries:
                self._evict()

    def _evict(self) -> None:
        """Delete expired records, then the earliest-expiring ones, down to the bound."""
        self._db.execute(
            "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._now(),)
        )
        over = int(self._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0]) - self.max_entries
        if over > 0:
            self._db.execute(
                "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at IS NOT NULL"
                " ORDER BY expires_at LIMIT ?)",
                (over,),
            )
        self._count = int(self._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        row = self._db.execute("SELECT value, expires_at FROM kv WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        value, expires_at = row
        now = self._now()
        if expires_at is not None and expires_at <= now:
            self._db.execute("DELETE FROM kv WHERE key=? AND expires_at <= ?", (key, now))
            self._count -= 1
            return None
        renew = _seconds(renew_for)
        if renew and expires_at is not None:
            self._db.execute("UPDATE kv SET expires_at=? WHERE key=?", (now + renew, key))
        return bytes(value)

    async def delete(self, key: str) -> None:
        cur = self._db.execute("DELETE FROM kv WHERE key=?", (key,))
        self._count -= max(0, cur.rowcount)

    async def delete_all(self) -> None:
        self._db.execute("DELETE FROM kv")
        self._count = 0

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = self._db.execute("SELECT expires_at FROM kv WHERE key=?", (key,)).fetchone()
        if row is None or row[0] is None:
            return None
        return max(0, int(row[0] - self._now()))

    def __len__(self) -> int:
        """Records stored, expired ones not yet deleted included."""
        return self._count
