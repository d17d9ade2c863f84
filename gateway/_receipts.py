"""Receipts of paid requests and the durable queue they wait in until recorded on chain.

Two backends with one interface: SQLite (WAL) in memory mode, Redis Streams in Redis mode.
A receipt is appended before the response is sent. The recorder takes candidates in
arrival order, writes its batches durably (``open``), has them signed and mined, and only
then completes them: the receipts become ``recorded`` and leave the stream. A batch that
is ``open`` after a crash is resumed with the same signer idempotency key, so it is
mined at most once.

Two receipt types, on purpose. :class:`Receipt` here is what the gateway makes on every paid
request, stores, queues and serves: JSON-shaped (0x-hex strings, the billed ``rows``), built
without validation because the gateway itself fills it from checked values.
``contracts.merkle.Receipt`` is the ``InferenceLedger.Receipt`` struct: bytes fields checked
to be 32 bytes, the user address EIP-55 checksummed (a keccak per receipt), no ``rows``, and it
is what the Merkle leaf is hashed from. :meth:`Receipt.on_chain` is the one typed conversion,
used by the recorder once per receipt per batch. One type for both would put that checking
and the hex/bytes round trip on the request path: building and serialising a gateway receipt
takes 1.5 us, a chain receipt with the same JSON 41 us (27x; ``timeit`` best of 5 x 20,000 on
the shared 2-core machine, 2026-12-06), while the chain side would gain nothing from ``rows``
and strings. So the gateway keeps its own and converts at the edge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from contracts.merkle import Receipt as ChainReceipt
from gateway._autopipe import AutoPipeline
from gateway._errors import ServiceUnavailable
from gateway._lease import Fence
from gateway._sqlite_store import lock_queue_file

__all__ = [
    "BatchRecord",
    "Receipt",
    "ReceiptQueue",
    "RedisReceiptQueue",
    "SqliteReceiptQueue",
    "StoredReceipt",
    "new_receipt_id",
]

_log = logging.getLogger("gateway.receipts")


def new_receipt_id() -> str:
    """A fresh receipt id.

    Returns:
        0x-prefixed hex of 32 random bytes (the ``bytes32 receiptId`` on chain).
    """
    return "0x" + secrets.token_bytes(32).hex()


@dataclass(frozen=True)
class Receipt:
    """One paid request, as the gateway stores and serves it (JSON, hex fields, billed rows).

    :meth:`on_chain` gives the ``InferenceLedger.Receipt`` struct (``contracts.merkle.Receipt``)
    that the Merkle leaf is computed from.

    Attributes:
        receipt_id: 0x-hex bytes32.
        user: EIP-55 address charged.
        subnet_id: Subnet that served it.
        model_hash: 0x-hex bytes32 of the model that answered.
        request_hash: 0x-hex SHA-256 of the request body (`content_hash`).
        response_hash: 0x-hex SHA-256 of the response body (`content_hash`).
        price_wei: Amount charged (price per row times rows), wei.
        timestamp: Unix time (s) the response was produced.
        rows: Billed rows (requests counted on chain).
    """

    receipt_id: str
    user: str
    subnet_id: int
    model_hash: str
    request_hash: str
    response_hash: str
    price_wei: int
    timestamp: int
    rows: int = 1

    def to_json(self) -> dict[str, Any]:
        """JSON object (wei as a decimal string, so no precision is lost).

        Returns:
            The receipt's fields.
        """
        return {
            "receipt_id": self.receipt_id,
            "user": self.user,
            "subnet_id": self.subnet_id,
            "model_hash": self.model_hash,
            "request_hash": self.request_hash,
            "response_hash": self.response_hash,
            "price_wei": str(self.price_wei),
            "timestamp": self.timestamp,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Receipt:
        """Inverse of :meth:`to_json`.

        Args:
            d: As written by :meth:`to_json`.

        Returns:
            The receipt.
        """
        return cls(**{**d, "price_wei": int(d["price_wei"])})

    def on_chain(self) -> ChainReceipt:
        """The ``InferenceLedger.Receipt`` struct of this receipt (hex fields as bytes, no rows).

        Returns:
            The receipt as :mod:`contracts.merkle` hashes it into its Merkle leaf.

        Raises:
            ValueError: A hash field is not 0x-hex of 32 bytes.
        """
        return ChainReceipt(
            receipt_id=bytes.fromhex(self.receipt_id[2:]),
            user=self.user,
            subnet_id=self.subnet_id,
            model_hash=bytes.fromhex(self.model_hash[2:]),
            request_hash=bytes.fromhex(self.request_hash[2:]),
            response_hash=bytes.fromhex(self.response_hash[2:]),
            price_wei=self.price_wei,
            timestamp=self.timestamp,
        )


@dataclass
class BatchRecord:
    """A batch of one subnet's receipts on its way to the chain.

    Attributes:
        key: Local id, also the signer's idempotency key.
        subnet_id: Subnet.
        receipt_ids: Receipts in leaf order.
        root: 0x-hex Merkle root.
        status: ``open``, ``recorded`` or ``failed``.
        created_at: Unix time (s).
        tx_hash: Recording transaction, once signed.
        raw_tx: Signed transaction (0x-hex), kept so it can be re-broadcast.
        batch_id: On-chain batch id, once mined.
        block_number: Block it was mined in.
        error: Why it failed.
    """

    key: str
    subnet_id: int
    receipt_ids: list[str]
    root: str
    status: str = "open"
    created_at: float = field(default_factory=time.time)
    tx_hash: str | None = None
    raw_tx: str | None = None
    batch_id: int | None = None
    block_number: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON object.

        Returns:
            Every field.
        """
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BatchRecord:
        """Inverse of :meth:`to_json`.

        Args:
            d: As written by :meth:`to_json`.

        Returns:
            The record.
        """
        return cls(**d)


@dataclass(frozen=True)
class StoredReceipt:
    """A receipt with where it stands.

    Attributes:
        receipt: The receipt.
        status: ``queued``, ``batched``, ``recorded`` or ``failed``.
        batch_key: Its batch, once batched.
        enqueued_at: Unix time (s) it was queued.
    """

    receipt: Receipt
    status: str
    batch_key: str | None
    enqueued_at: float


class ReceiptQueue(ABC):
    """Durable queue of receipts and their batches."""

    max_pending: int = 100_000

    @abstractmethod
    async def append(self, receipt: Receipt) -> None:
        """Queue a receipt durably (returns only once it survives a crash of this process).

        Args:
            receipt: The receipt.

        Raises:
            ServiceUnavailable: The queue is full (``max_pending``) or unreachable.
        """

    @abstractmethod
    async def depth(self) -> int:
        """Receipts queued or batched but not yet recorded.

        Returns:
            The count.
        """

    @abstractmethod
    async def candidates(self, limit: int) -> tuple[list[StoredReceipt], str]:
        """Oldest receipts not yet in any batch.

        Args:
            limit: Most receipts returned.

        Returns:
            The receipts in arrival order, and a cursor to pass to :meth:`create_batches`.
        """

    @abstractmethod
    async def create_batches(
        self, batches: list[BatchRecord], cursor: str, fence: Fence | None = None
    ) -> bool:
        """Persist new open batches and mark their receipts batched, atomically.

        Args:
            batches: Batches covering every candidate up to ``cursor``.
            cursor: From :meth:`candidates`.
            fence: The recorder lease this is written under; checked in the same atomic
                step (a shared queue refuses a fence that is no longer the lease).

        Returns:
            True if written; False if the fence is stale (nothing written).
        """

    @abstractmethod
    async def open_batches(self) -> list[BatchRecord]:
        """Batches created and not yet recorded or failed (oldest first).

        Returns:
            The batches.
        """

    @abstractmethod
    async def save_batch(self, batch: BatchRecord) -> None:
        """Update a batch record (e.g. with its signed transaction).

        Args:
            batch: The batch.
        """

    @abstractmethod
    async def finish_batch(self, batch: BatchRecord) -> None:
        """Mark a batch recorded or failed and its receipts likewise, atomically.

        Args:
            batch: The batch, with ``status`` set to ``recorded`` or ``failed``.
        """

    @abstractmethod
    async def get(self, receipt_id: str) -> StoredReceipt | None:
        """Look up a receipt.

        Args:
            receipt_id: 0x-hex id.

        Returns:
            The receipt and its status, or None.
        """

    @abstractmethod
    async def get_batch(self, key: str) -> BatchRecord | None:
        """Look up a batch.

        Args:
            key: Batch key.

        Returns:
            The batch, or None.
        """

    @abstractmethod
    async def unrecorded_totals(self) -> dict[str, int]:
        """Sum of prices of receipts not yet recorded (nor failed), per user.

        Returns:
            Lower-case address -> wei.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class SqliteReceiptQueue(ReceiptQueue):
    """The queue in a SQLite file (WAL, ``synchronous=NORMAL``: survives a process crash).

    One process at a time: the queue holds an exclusive ``flock`` on ``<path>.lock`` from
    construction to :meth:`close` (:func:`gateway._sqlite_store.lock_queue_file`).

    Appends are group-committed on the event loop thread: the appends of one event-loop
    turn go into one transaction at the start of the next turn, and each caller returns
    once that transaction is committed. In WAL mode with ``synchronous=NORMAL`` a commit
    appends to the WAL without an fsync (about 25 µs a receipt here, in one batch), so
    the loop never waits on the disk. The fsyncs happen at checkpoints, which a background
    thread runs on its own connection (``PRAGMA wal_checkpoint(PASSIVE)``: it never blocks
    the writer) every ``checkpoint_every`` written rows; automatic checkpoints, which
    SQLite would run inside a commit, are off.

    Writing from the loop rather than a writer thread is measured, not assumed: a writer
    thread reacquires the GIL after every statement, and on two cores the hand-offs cost
    more than the inserts (``bench/gateway``: billed/bare 0.49 with a writer thread).

    Args:
        path: Database file (created with its parent directory).
        max_pending: Bound of unrecorded receipts.
        checkpoint_every: Rows written between two background checkpoints.

    Raises:
        ConfigurationError: Another process uses the queue file.
    """

    WAL_RESTART_PAGES = 4_096
    """WAL length (pages; 16 MiB of 4 KiB pages) past which a passive checkpoint is followed
    by a ``TRUNCATE`` one. Under steady load the writer commits during every passive
    checkpoint, so the WAL is never found fully copied and never restarts by itself; the
    ``TRUNCATE`` checkpoint holds new commits back (the loop waits in SQLite's busy
    handler) while it copies the last pages, then empties the WAL."""

    def __init__(
        self, path: Path, *, max_pending: int = 100_000, checkpoint_every: int = 2_000
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._lock_fd: int | None = lock_queue_file(path)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does them
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS receipts (
              seq INTEGER PRIMARY KEY AUTOINCREMENT,
              id TEXT UNIQUE NOT NULL,
              user TEXT NOT NULL,
              price_wei TEXT NOT NULL,
              body TEXT NOT NULL,
              status TEXT NOT NULL,
              batch_key TEXT,
              enqueued_at REAL NOT NULL
            );
            CREATE INDEX IF NOT EXISTS receipts_status ON receipts(status, seq);
            CREATE TABLE IF NOT EXISTS batches (
              key TEXT PRIMARY KEY,
              status TEXT NOT NULL,
              body TEXT NOT NULL
            );
            """
        )
        self._checkpoint_db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None
        )
        self._checkpointer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="receipt-checkpoint"
        )
        self._checkpointing: Future[tuple[int, int, int]] | None = None
        self.checkpoint_every = checkpoint_every
        self.checkpoints = 0
        """Checkpoints completed (for tests and curiosity)."""
        self._written_since_checkpoint = 0
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._flush_scheduled = False
        self.max_pending = max_pending
        self._depth = self._count_depth()

    def _count_depth(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM receipts WHERE status IN ('queued','batched')"
        ).fetchone()
        return int(row[0])

    async def append(self, receipt: Receipt) -> None:
        if self._depth + len(self._pending) >= self.max_pending:
            raise ServiceUnavailable("the receipt queue is full; retry later")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        row = (
            receipt.receipt_id,
            receipt.user.lower(),
            str(receipt.price_wei),
            msgspec.json.encode(receipt.to_json()).decode(),
            time.time(),
        )
        self._pending.append((row, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)  # after the other appends of this event-loop turn
        await done

    def _flush(self) -> None:
        """Commit the appends of the last event-loop turn in one transaction."""
        self._flush_scheduled = False
        # An append cancelled while waiting (its request gone, its price released) is
        # not written: no receipt without its reservation.
        batch = [(row, done) for row, done in self._pending if not done.cancelled()]
        self._pending = []
        if not batch:
            return
        try:
            self._transaction(
                "INSERT INTO receipts (id, user, price_wei, body, status, enqueued_at)"
                " VALUES (?, ?, ?, ?, 'queued', ?)",
                [row for row, _ in batch],
            )
        except sqlite3.Error as exc:
            _log.error("receipt queue: a commit of %d receipts failed: %s", len(batch), exc)
            for _, done in batch:
                done.set_exception(ServiceUnavailable("the receipt queue could not be written"))
            return
        self._depth += len(batch)
        for _, done in batch:
            done.set_result(None)

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``executemany`` in one write transaction, then maybe a background checkpoint.

        Raises:
            sqlite3.Error: Rolled back.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._wrote(len(rows))

    def _wrote(self, rows: int) -> None:
        """Count written rows; start a checkpoint in the background every so many."""
        self._written_since_checkpoint += rows
        if self._written_since_checkpoint < self.checkpoint_every or self._checkpointing:
            return
        self._written_since_checkpoint = 0
        self._checkpointing = self._checkpointer.submit(self._checkpoint)
        self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpoint(self) -> tuple[int, int, int]:
        """Copy WAL pages into the database file (the checkpointer thread).

        Returns:
            ``(busy, wal_pages, checkpointed_pages)`` of the last checkpoint run
            (https://sqlite.org/pragma.html#pragma_wal_checkpoint).
        """
        busy, wal_pages, done = self._checkpoint_db.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
        if wal_pages > self.WAL_RESTART_PAGES:
            busy, wal_pages, done = self._checkpoint_db.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        return int(busy), int(wal_pages), int(done)

    def _checkpointed(self, future: Future[tuple[int, int, int]]) -> None:
        self._checkpointing = None
        if future.cancelled():
            return
        if (exc := future.exception()) is not None:
            _log.warning("receipt queue: checkpoint failed: %s", exc)
        else:
            self.checkpoints += 1

    async def depth(self) -> int:
        return self._depth

    def _stored(self, row: tuple[Any, ...]) -> StoredReceipt:
        body, status, batch_key, enqueued_at = row
        return StoredReceipt(Receipt.from_json(json.loads(body)), status, batch_key, enqueued_at)

    async def candidates(self, limit: int) -> tuple[list[StoredReceipt], str]:
        rows = self._db.execute(
            "SELECT body, status, batch_key, enqueued_at, seq FROM receipts"
            " WHERE status = 'queued' ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        cursor = str(rows[-1][4]) if rows else "0"
        return [self._stored(r[:4]) for r in rows], cursor

    async def create_batches(
        self, batches: list[BatchRecord], cursor: str, fence: Fence | None = None
    ) -> bool:
        # One process holds the queue file (lock_queue_file): no other writer to fence out.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for b in batches:
                self._db.execute(
                    "INSERT INTO batches (key, status, body) VALUES (?, ?, ?)",
                    (b.key, b.status, json.dumps(b.to_json())),
                )
                self._db.executemany(
                    "UPDATE receipts SET status='batched', batch_key=? WHERE id=?",
                    [(b.key, rid) for rid in b.receipt_ids],
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._wrote(sum(len(b.receipt_ids) for b in batches))
        return True

    async def open_batches(self) -> list[BatchRecord]:
        rows = self._db.execute(
            "SELECT body FROM batches WHERE status='open' ORDER BY rowid"
        ).fetchall()
        return [BatchRecord.from_json(json.loads(r[0])) for r in rows]

    async def save_batch(self, batch: BatchRecord) -> None:
        self._db.execute(
            "UPDATE batches SET status=?, body=? WHERE key=?",
            (batch.status, json.dumps(batch.to_json()), batch.key),
        )

    async def finish_batch(self, batch: BatchRecord) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE batches SET status=?, body=? WHERE key=?",
                (batch.status, json.dumps(batch.to_json()), batch.key),
            )
            self._db.execute(
                "UPDATE receipts SET status=? WHERE batch_key=?", (batch.status, batch.key)
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._wrote(len(batch.receipt_ids))
        self._depth = self._count_depth()

    async def get(self, receipt_id: str) -> StoredReceipt | None:
        row = self._db.execute(
            "SELECT body, status, batch_key, enqueued_at FROM receipts WHERE id=?",
            (receipt_id.lower(),),
        ).fetchone()
        return None if row is None else self._stored(row)

    async def get_batch(self, key: str) -> BatchRecord | None:
        row = self._db.execute("SELECT body FROM batches WHERE key=?", (key,)).fetchone()
        return None if row is None else BatchRecord.from_json(json.loads(row[0]))

    async def unrecorded_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        rows = self._db.execute(
            "SELECT user, price_wei FROM receipts WHERE status IN ('queued','batched')"
        ).fetchall()
        for user, price in rows:
            totals[user] = totals.get(user, 0) + int(price)
        return totals

    async def close(self) -> None:
        self._checkpointer.shutdown(wait=True)
        self._checkpoint_db.close()
        self._db.close()  # the last connection: SQLite checkpoints and removes the WAL
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The queue's connection (autocommit, WAL), shared with the records store.

        The gateway's :class:`~gateway._sqlite_store.SqliteStore` uses it, so receipts and
        records live in one file under one lock.
        """
        return self._db


_APPEND_LUA = b"""
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])
return 1
"""


# Set a receipt record's status and batch, never turning a finished one back.
_STATUS_LUA = b"""
local function set_status(key, status, batch_key)
  local raw = redis.call('GET', key)
  if not raw then return end
  local rec = cjson.decode(raw)
  if rec['status'] == 'recorded' or rec['status'] == 'failed' then return end
  rec['status'] = status
  rec['batch_key'] = batch_key
  redis.call('SET', key, cjson.encode(rec))
end
"""

# KEYS: lease, cursor, open set, then per batch its record key and its receipts' keys.
# ARGV: fence value ('' = unfenced), cursor, then per batch: key, record JSON, receipt count.
_CREATE_BATCHES_LUA = (
    _STATUS_LUA
    + b"""
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local k, a = 4, 3
while a <= #ARGV do
  local key, body, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  redis.call('SET', KEYS[k], body)
  redis.call('SADD', KEYS[3], key)
  for i = 1, n do set_status(KEYS[k + i], 'batched', key) end
  k = k + n + 1
  a = a + 3
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""
)

# KEYS: batch record, open set, stream, then the batch's receipts' keys.
# ARGV: batch key, record JSON, final status, then stream entry ids to delete.
_FINISH_BATCH_LUA = (
    _STATUS_LUA
    + b"""
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
for i = 4, #KEYS do set_status(KEYS[i], ARGV[3], ARGV[1]) end
for i = 4, #ARGV do redis.call('XDEL', KEYS[3], ARGV[i]) end
return 1
"""
)


class RedisReceiptQueue(ReceiptQueue):
    """The queue as a Redis Stream plus a hash of receipt records.

    Keys (under ``namespace``): ``receipts`` (stream, one entry per unrecorded receipt),
    ``receipt:<id>`` (record), ``batch:<key>`` (record), ``batches:open`` (set),
    ``receipts:cursor`` (last stream id put into a batch).

    Args:
        redis: Asyncio Redis client.
        namespace: Key prefix.
        max_pending: Bound of unrecorded receipts.
        pipe: Shares appends' round trips with other hot-path commands (one of its own
            on ``redis`` by default).
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        max_pending: int = 100_000,
        pipe: AutoPipeline | None = None,
    ) -> None:
        self._r: Any = redis  # redis-py's stubs type replies as bytes | str
        self._ns = namespace
        self.max_pending = max_pending
        self._append = self._r.register_script(_APPEND_LUA)
        self._create = self._r.register_script(_CREATE_BATCHES_LUA)
        self._finish = self._r.register_script(_FINISH_BATCH_LUA)
        self._owns_pipe = pipe is None
        self._pipe = pipe or AutoPipeline(redis)

    def _k(self, name: str) -> str:
        return f"{self._ns}:{name}"

    async def append(self, receipt: Receipt) -> None:
        body = msgspec.json.encode(receipt.to_json()).decode()
        record = msgspec.json.encode(
            {"body": body, "status": "queued", "batch_key": None, "enqueued_at": time.time()}
        )
        try:
            added = await self._pipe.evalsha(
                self._append,
                keys=[self._k("receipt:" + receipt.receipt_id), self._k("receipts")],
                args=[record, receipt.receipt_id, self.max_pending],
            )
        except RedisError as exc:
            raise ServiceUnavailable("the receipt queue is unreachable") from exc
        if not added:
            raise ServiceUnavailable("the receipt queue is full; retry later")

    async def depth(self) -> int:
        return int(await self._r.xlen(self._k("receipts")))

    def _stored(self, raw: bytes | str) -> StoredReceipt:
        rec = json.loads(raw)
        return StoredReceipt(
            Receipt.from_json(json.loads(rec["body"])),
            rec["status"],
            rec["batch_key"],
            rec["enqueued_at"],
        )

    async def candidates(self, limit: int) -> tuple[list[StoredReceipt], str]:
        cursor = await self._r.get(self._k("receipts:cursor"))
        start = "(" + cursor.decode() if cursor else "-"
        entries = await self._r.xrange(self._k("receipts"), min=start, max="+", count=limit)
        if not entries:
            return [], cursor.decode() if cursor else "0-0"
        ids = [fields[b"id"].decode() for _eid, fields in entries]
        raws = await self._r.mget([self._k("receipt:" + i) for i in ids])
        out = [self._stored(raw) for raw in raws if raw is not None]
        return out, entries[-1][0].decode()

    async def create_batches(
        self, batches: list[BatchRecord], cursor: str, fence: Fence | None = None
    ) -> bool:
        keys = [self._k("recorder:lease"), self._k("receipts:cursor"), self._k("batches:open")]
        args: list[Any] = [fence.value if fence is not None else "", cursor]
        for b in batches:
            keys.append(self._k("batch:" + b.key))
            keys += [self._k("receipt:" + rid) for rid in b.receipt_ids]
            args += [b.key, json.dumps(b.to_json()), len(b.receipt_ids)]
        # Lease check, batch records, the receipts' status and the cursor in one script: a
        # recorder whose lease was taken over cannot cut receipts a newer holder cuts.
        return bool(await self._create(keys=keys, args=args))

    async def open_batches(self) -> list[BatchRecord]:
        keys = sorted(k.decode() for k in await self._r.smembers(self._k("batches:open")))
        out = []
        for key in keys:
            b = await self.get_batch(key)
            if b is not None:
                out.append(b)
        return sorted(out, key=lambda b: b.created_at)

    async def save_batch(self, batch: BatchRecord) -> None:
        await self._r.set(self._k("batch:" + batch.key), json.dumps(batch.to_json()))

    async def finish_batch(self, batch: BatchRecord) -> None:
        wanted = set(batch.receipt_ids)
        cursor = await self._r.get(self._k("receipts:cursor"))
        entries = await self._r.xrange(
            self._k("receipts"), min="-", max=cursor.decode() if cursor else "+"
        )
        stream_ids = [eid for eid, f in entries if f[b"id"].decode() in wanted]
        # Batch record, the receipts' final status and the acknowledgement (XDEL) in one
        # script; a finished status is never turned back (two replicas may finish one batch).
        await self._finish(
            keys=[
                self._k("batch:" + batch.key),
                self._k("batches:open"),
                self._k("receipts"),
                *(self._k("receipt:" + rid) for rid in batch.receipt_ids),
            ],
            args=[batch.key, json.dumps(batch.to_json()), batch.status, *stream_ids],
        )

    async def get(self, receipt_id: str) -> StoredReceipt | None:
        raw = await self._r.get(self._k("receipt:" + receipt_id.lower()))
        return None if raw is None else self._stored(raw)

    async def get_batch(self, key: str) -> BatchRecord | None:
        raw = await self._r.get(self._k("batch:" + key))
        return None if raw is None else BatchRecord.from_json(json.loads(raw))

    async def unrecorded_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        entries = await self._r.xrange(self._k("receipts"))
        ids = [f[b"id"].decode() for _e, f in entries]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for raw in await self._r.mget([self._k("receipt:" + i) for i in chunk]):
                if raw is None:
                    continue
                s = self._stored(raw)
                user = s.receipt.user.lower()
                totals[user] = totals.get(user, 0) + s.receipt.price_wei
        return totals

    async def close(self) -> None:
        if self._owns_pipe:  # a shared one is closed by its owner (RedisState)
            await self._pipe.aclose()
