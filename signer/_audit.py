"""Append-only, hash-chained JSON-lines audit log.

Each line is one JSON object with ``seq`` (1, 2, ...), ``prev`` (the ``hash`` of the line
before; 64 zeros for the first), ``hash``: the SHA-256 (hex) of the canonical JSON of the
entry without its ``hash`` and ``sig`` members (sorted keys, no spaces, UTF-8), and ``sig``: the
operator key's EIP-191 ``personal_sign`` signature of the text
``"2PM signer audit entry <hash>"``.

Editing a line breaks its own hash; removing or reordering lines breaks the ``prev``/``seq``
link of the next one; forging new lines (even with correct hashes) fails the signature check,
which anyone can run with just the operator address. The signer also keeps the head (last
``seq`` and ``hash``) in its database, in the same transaction as the signature it records, so
cutting entries off the end is caught too (:func:`verify_audit_log` with ``expected_head``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_defunct

from signer._errors import ConfigError

GENESIS = "0" * 64


def signable_entry(digest: str) -> SignableMessage:
    """The EIP-191 message the operator key signs for an entry.

    Args:
        digest: The entry's ``hash`` (64 hex).

    Returns:
        ``personal_sign`` of ``"2PM signer audit entry <hash>"`` (cannot be mistaken for a
        transaction or EIP-712 data, which have other prefixes).
    """
    return encode_defunct(text=f"2PM signer audit entry {digest}")


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry: SHA-256 of its canonical JSON without ``hash`` and ``sig``.

    Args:
        entry: The entry.

    Returns:
        64 hex characters.
    """
    body = {k: v for k, v in entry.items() if k not in ("hash", "sig")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class AuditHead:
    """The last entry of a log.

    Attributes:
        seq: Its sequence number (0 for an empty log).
        hash: Its hash (:data:`GENESIS` for an empty log).
    """

    seq: int
    hash: str


@dataclass(frozen=True)
class AuditReport:
    """The result of :func:`verify_audit_log`.

    Attributes:
        ok: True when every check passed.
        entries: Number of well-linked entries read before the first problem.
        head: The last good entry.
        bad_line: 1-based line number of the first bad line, or None.
        problem: What is wrong, or None.
    """

    ok: bool
    entries: int
    head: AuditHead
    bad_line: int | None = None
    problem: str | None = None


def verify_audit_log(
    path: Path, expected_head: AuditHead | None = None, address: str | None = None
) -> AuditReport:
    """Check a log's hash chain, and optionally its signatures and an expected head.

    Args:
        path: The log file (a missing file is an empty log).
        expected_head: The head recorded elsewhere (the signer's database); when given, the
            entry with that ``seq`` must exist and have that hash.
        address: The operator address; when given, every entry's ``sig`` must recover to it.

    Returns:
        The report; ``bad_line`` points at the first line that is not what it should be.
    """
    head = AuditHead(0, GENESIS)
    expected_at: int | None = None
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        lines: list[bytes] = []
    else:
        with handle:
            lines = handle.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw)
        except ValueError:
            return AuditReport(False, head.seq, head, number, "not a JSON object")
        if not isinstance(entry, dict):
            return AuditReport(False, head.seq, head, number, "not a JSON object")
        if entry.get("seq") != head.seq + 1:
            return AuditReport(
                False,
                head.seq,
                head,
                number,
                f"seq {entry.get('seq')!r} where {head.seq + 1} was expected "
                "(an entry was removed, reordered or inserted)",
            )
        if entry.get("prev") != head.hash:
            return AuditReport(
                False,
                head.seq,
                head,
                number,
                "prev does not match the hash of the line before "
                "(an entry was removed, reordered or inserted)",
            )
        if entry.get("hash") != entry_hash(entry):
            return AuditReport(
                False, head.seq, head, number, "hash mismatch (the entry was edited)"
            )
        if address is not None and not _signed_by(entry, address):
            return AuditReport(
                False, head.seq, head, number, "signature is not the operator's (a forged entry)"
            )
        head = AuditHead(int(entry["seq"]), str(entry["hash"]))
        if expected_head is not None and head.seq == expected_head.seq:
            expected_at = number
            if head.hash != expected_head.hash:
                return AuditReport(
                    False, head.seq - 1, head, number, "differs from the head in the database"
                )
    if expected_head is not None and expected_head.seq > 0 and expected_at is None:
        return AuditReport(
            False,
            head.seq,
            head,
            len(lines) + 1,
            f"log ends at seq {head.seq} but the database recorded seq {expected_head.seq} "
            "(entries were cut off the end)",
        )
    return AuditReport(True, head.seq, head)


def _signed_by(entry: dict[str, Any], address: str) -> bool:
    sig = entry.get("sig")
    if not isinstance(sig, str):
        return False
    try:
        signer = Account.recover_message(signable_entry(str(entry["hash"])), signature=sig)
    except Exception:  # malformed signatures raise several types
        return False
    return bool(signer.lower() == address.lower())


#: Signs an entry hash (64 hex) and returns the 65-byte signature as 0x hex.
SignFn = Callable[[str], str]


class AuditLog:
    """Appends entries to the log; one writer (the signer, under its lock).

    Args:
        path: The log file; created with mode 0600 when missing.
        head: The head to continue from (from :func:`verify_audit_log`).
        sign: Signs each entry's hash with the operator key.

    Raises:
        ConfigError: The file cannot be opened.
    """

    def __init__(self, path: Path, head: AuditHead, sign: SignFn) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open audit log {path}: {exc.strerror}") from exc
        self.path = path
        self.head = head
        self._sign = sign

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one entry and fsync it.

        Args:
            fields: The entry's content (JSON-serialisable; must not contain ``seq``,
                ``prev``, ``hash`` or ``sig``).

        Returns:
            The entry as written, with ``seq``, ``prev``, ``hash`` and ``sig``.

        Raises:
            OSError: The write or fsync failed (the caller rolls back its transaction).
        """
        entry = {**fields, "seq": self.head.seq + 1, "prev": self.head.hash}
        entry["hash"] = entry_hash(entry)
        entry["sig"] = self._sign(entry["hash"])
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        data = line.encode() + b"\n"
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to the audit log ({written} of {len(data)} bytes)")
        os.fsync(self._fd)
        self.head = AuditHead(entry["seq"], entry["hash"])
        return entry

    def recent(self, limit: int, max_bytes: int = 1 << 20) -> list[dict[str, Any]]:
        """The newest entries, newest first, read from the end of the file.

        Args:
            limit: Most entries returned (>= 0).
            max_bytes: Most bytes read from the end of the file (bounds the work; an entry
                that starts before them is left out).

        Returns:
            Up to ``limit`` entries as written (``seq``, ``ts``, ``event``, ``outcome`` …).
        """
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(size - start)
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first line may be cut
        entries: list[dict[str, Any]] = []
        for line in reversed(lines):
            if len(entries) >= limit:
                break
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line is reported by verify_audit_log, not here
        return entries

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)
