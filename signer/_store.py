"""Durable state of the signer in SQLite: the nonce, signed records, replay set, audit head.

One SQLite database in WAL mode with ``synchronous=FULL``. Every signature is made inside one
``BEGIN IMMEDIATE`` transaction that reads the next nonce, checks the rolling-window caps,
signs, stores the record under its idempotency key, advances the nonce, appends the audit
entry and stores the new audit head; then commits. A ``kill -9`` before the commit leaves no
trace but a dangling audit entry (marked as rolled back at the next start); after the commit
the record exists and a retry with the same key returns the same bytes. So no nonce is ever
handed out twice, and none is skipped as long as callers retry until they get an answer.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from signer._audit import GENESIS, AuditHead, AuditLog, signable_entry, verify_audit_log
from signer._errors import ConfigError, NonceConflict, RateLimited

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    caller TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    response TEXT NOT NULL,
    nonce INTEGER,
    value_wei TEXT NOT NULL DEFAULT '0',
    created_s REAL NOT NULL,
    UNIQUE (caller, idem_key)
);
CREATE INDEX IF NOT EXISTS records_created ON records (created_s);
CREATE TABLE IF NOT EXISTS caller_nonces (
    caller TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_s REAL NOT NULL,
    PRIMARY KEY (caller, nonce)
);
CREATE INDEX IF NOT EXISTS caller_nonces_expiry ON caller_nonces (expires_s);
"""


@dataclass(frozen=True)
class StoredRecord:
    """A signed record found under an idempotency key.

    Attributes:
        kind: ``"transaction"`` or ``"typed_data"``.
        body_sha256: Hash of the canonical request it answered.
        response: The response returned the first time.
    """

    kind: str
    body_sha256: str
    response: dict[str, Any]


class Store:
    """The signer's database and audit log, used under one lock.

    Args:
        db_path: SQLite file.
        audit_path: Audit log file.
        account: The operator account: the database is bound to its address on first use, and
            it signs the audit entries.
        clock: Returns the time in seconds since the epoch (``time.time``).

    Raises:
        ConfigError: The database belongs to another address, or the audit log does not match
            the head recorded in the database (edited, cut or reordered).
    """

    def __init__(
        self, db_path: Path, audit_path: Path, account: LocalAccount, clock: Callable[[], float]
    ) -> None:
        address = str(account.address)
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.lock = threading.Lock()
        self._clock = clock
        with self.transaction():
            bound = self._meta("address")
            if bound is None:
                self._set_meta("address", address)
                self._set_meta("next_nonce", "0")
                self._set_meta("audit_seq", "0")
                self._set_meta("audit_hash", GENESIS)
            elif bound != address:
                raise ConfigError(
                    f"{db_path} holds the nonce of {bound}, not of the keystore's {address}"
                )
        recorded = self.audit_head()
        report = verify_audit_log(audit_path, expected_head=recorded, address=address)
        if not report.ok:
            raise ConfigError(
                f"audit log {audit_path} fails verification at line {report.bad_line}: "
                f"{report.problem}; refusing to start (run `twopm signer audit verify`)"
            )

        def sign(digest: str) -> str:
            return "0x" + bytes(account.sign_message(signable_entry(digest)).signature).hex()

        self.audit = AuditLog(audit_path, report.head, sign)
        if report.head.seq > recorded.seq:
            # Entries written by a transaction that did not commit (the process died between
            # the audit fsync and the database commit): say so in the log itself.
            self.append_audit(
                {
                    "event": "recovery",
                    "outcome": "rolled_back",
                    "detail": "entries after the recorded head belong to transactions that "
                    "never committed; their signatures were never returned",
                    "rolled_back_seqs": list(range(recorded.seq + 1, report.head.seq + 1)),
                }
            )

    def close(self) -> None:
        """Close the database and the audit log."""
        self.audit.close()
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception.

        Yields:
            The connection.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- audit -------------------------------------------------------------------------------

    def audit_head(self) -> AuditHead:
        """The audit head recorded in the database.

        Returns:
            Its seq and hash.
        """
        seq = self._meta("audit_seq")
        digest = self._meta("audit_hash")
        return AuditHead(int(seq or 0), digest or GENESIS)

    def append_audit(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append an audit entry and record the new head, in one transaction of its own.

        Args:
            fields: The entry content.

        Returns:
            The entry as written.
        """
        with self.transaction():
            return self.append_audit_in_transaction(fields)

    def append_audit_in_transaction(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append an audit entry and record the head inside the caller's open transaction.

        Args:
            fields: The entry content; ``ts`` (seconds since the epoch) is added.

        Returns:
            The entry as written.
        """
        entry = self.audit.append({"ts": round(self._clock(), 3), **fields})
        self._set_meta("audit_seq", str(entry["seq"]))
        self._set_meta("audit_hash", entry["hash"])
        return entry

    # -- nonces --------------------------------------------------------------------------------

    def next_nonce(self) -> int:
        """The nonce the next transaction will get.

        Returns:
            The nonce.
        """
        return int(self._meta("next_nonce") or 0)

    def take_nonce(self) -> int:
        """Hand out the next nonce (inside an open transaction).

        Returns:
            The nonce handed out; the stored value is one higher.
        """
        nonce = self.next_nonce()
        self._set_meta("next_nonce", str(nonce + 1))
        return nonce

    def raise_nonce(self, confirmed_nonce: int) -> tuple[int, int]:
        """Raise the next nonce to at least ``confirmed_nonce`` (inside an open transaction).

        Args:
            confirmed_nonce: The chain's confirmed transaction count of the operator.

        Returns:
            (next nonce before, next nonce after).
        """
        before = self.next_nonce()
        after = max(before, confirmed_nonce)
        if after != before:
            self._set_meta("next_nonce", str(after))
        return before, after

    def set_nonce(self, nonce: int, *, allow_lower: bool) -> tuple[int, int]:
        """Admin: set the next nonce (inside an open transaction).

        Args:
            nonce: The new next nonce.
            allow_lower: Permit a value below the current one.

        Returns:
            (before, after).

        Raises:
            NonceConflict: Lowering without ``allow_lower``.
        """
        before = self.next_nonce()
        if nonce < before and not allow_lower:
            raise NonceConflict(
                "nonce_lower_refused",
                f"next nonce is {before}; lowering it to {nonce} needs --allow-lower",
            )
        self._set_meta("next_nonce", str(nonce))
        return before, nonce

    # -- idempotency records and windows -------------------------------------------------------

    def find_record(self, caller: str, key: str) -> StoredRecord | None:
        """The record stored under a caller's idempotency key.

        Args:
            caller: Caller id.
            key: Idempotency key.

        Returns:
            The record, or None.
        """
        row = self._db.execute(
            "SELECT kind, body_sha256, response FROM records WHERE caller = ? AND idem_key = ?",
            (caller, key),
        ).fetchone()
        if row is None:
            return None
        return StoredRecord(row[0], row[1], json.loads(row[2]))

    def insert_record(
        self,
        caller: str,
        key: str,
        kind: str,
        body_sha256: str,
        response: dict[str, Any],
        *,
        nonce: int | None = None,
        value_wei: int = 0,
    ) -> None:
        """Store a signed response under its idempotency key (inside an open transaction).

        Args:
            caller: Caller id.
            key: Idempotency key.
            kind: ``"transaction"`` or ``"typed_data"``.
            body_sha256: Hash of the canonical request.
            response: What is returned, now and on every retry.
            nonce: The nonce used (transactions).
            value_wei: The value carried (transactions).
        """
        self._db.execute(
            "INSERT INTO records (caller, idem_key, kind, body_sha256, response, nonce, "
            "value_wei, created_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                caller,
                key,
                kind,
                body_sha256,
                json.dumps(response, sort_keys=True),
                nonce,
                str(value_wei),
                self._clock(),
            ),
        )

    def check_windows(
        self, value_wei: int, *, max_tx_per_hour: int, max_value_wei: int, value_window_s: int
    ) -> None:
        """Check the rolling-window caps for one more transaction.

        Args:
            value_wei: Value of the new transaction.
            max_tx_per_hour: Cap on signed transactions over the last 3600 s.
            max_value_wei: Cap on the value signed over the last ``value_window_s``.
            value_window_s: The value window, seconds.

        Raises:
            RateLimited: ``rate_limited`` or ``window_value_over_cap``.
        """
        now = self._clock()
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM records WHERE kind = 'transaction' AND created_s > ?",
            (now - 3600,),
        ).fetchone()
        if count >= max_tx_per_hour:
            raise RateLimited(
                "rate_limited",
                f"{count} transactions signed in the last hour; the cap is {max_tx_per_hour}",
            )
        if value_wei:
            rows = self._db.execute(
                "SELECT value_wei FROM records WHERE kind = 'transaction' AND created_s > ? "
                "AND value_wei != '0'",
                (now - value_window_s,),
            ).fetchall()
            total = sum(int(r[0]) for r in rows) + value_wei
            if total > max_value_wei:
                raise RateLimited(
                    "window_value_over_cap",
                    f"{total} wei over the last {value_window_s} s would exceed the cap of "
                    f"{max_value_wei} wei",
                )

    def check_typed_data_rate(self, max_per_hour: int) -> None:
        """Check the typed-data cap for one more signature.

        Args:
            max_per_hour: Cap on EIP-712 signatures over the last 3600 s.

        Raises:
            RateLimited: ``rate_limited``.
        """
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM records WHERE kind = 'typed_data' AND created_s > ?",
            (self._clock() - 3600,),
        ).fetchone()
        if count >= max_per_hour:
            raise RateLimited(
                "rate_limited",
                f"{count} typed-data signatures in the last hour; the cap is {max_per_hour}",
            )

    def prune(self, retention_s: float) -> None:
        """Delete records older than the retention (inside an open transaction).

        Args:
            retention_s: Age in seconds beyond which records go.
        """
        self._db.execute("DELETE FROM records WHERE created_s < ?", (self._clock() - retention_s,))

    # -- replay set ----------------------------------------------------------------------------

    def remember_caller_nonce(self, caller: str, nonce: str, ttl_s: float, bound: int) -> bool:
        """Remember a caller's request nonce for ``ttl_s`` (inside an open transaction).

        Args:
            caller: Caller id.
            nonce: The request nonce.
            ttl_s: How long to remember it, seconds.
            bound: Most entries kept; beyond it (after expiring old ones) this refuses.

        Returns:
            True when new, False when seen before (a replay).

        Raises:
            RateLimited: ``replay_cache_full``.
        """
        now = self._clock()
        db = self._db
        db.execute("DELETE FROM caller_nonces WHERE expires_s < ?", (now,))
        if db.execute(
            "SELECT 1 FROM caller_nonces WHERE caller = ? AND nonce = ?", (caller, nonce)
        ).fetchone():
            return False
        (count,) = db.execute("SELECT COUNT(*) FROM caller_nonces").fetchone()
        if count >= bound:
            raise RateLimited("replay_cache_full", "too many requests inside the clock-skew window")
        db.execute(
            "INSERT OR IGNORE INTO caller_nonces (caller, nonce, expires_s) VALUES (?, ?, ?)",
            (caller, nonce, now + ttl_s),
        )
        return True

    # -- meta --------------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
