r"""Caller authentication: per-caller secrets and an HMAC-SHA256 signature on every request.

A caller sends four headers:

- ``X-2PM-Caller``: its id (``[A-Za-z0-9_.-]{1,64}``);
- ``X-2PM-Timestamp``: Unix time in whole seconds;
- ``X-2PM-Nonce``: a fresh random string (``[A-Za-z0-9_-]{16,64}``), never reused;
- ``X-2PM-Signature``: lowercase hex HMAC-SHA256 (RFC 2104) under the caller's secret of the
  string ``METHOD\\nPATH\\nSHA256_HEX(BODY)\\nTIMESTAMP\\nNONCE``.

The signer refuses a timestamp further than the clock skew from its own clock, and a nonce the
caller used before (remembered for twice the skew, in the database, so a restart does not
reopen the window). Signatures are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from signer._errors import ConfigError, NotAuthenticated
from signer._keystore import check_secret_file, write_secret_file

HEADER_CALLER = "X-2PM-Caller"
HEADER_TIMESTAMP = "X-2PM-Timestamp"
HEADER_NONCE = "X-2PM-Nonce"
HEADER_SIGNATURE = "X-2PM-Signature"

CALLER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


def string_to_sign(method: str, path: str, body: bytes, timestamp: str, nonce: str) -> bytes:
    r"""The exact bytes a caller signs.

    Args:
        method: HTTP method in capitals.
        path: Request path without query string, as sent (``/v1/sign/transaction``).
        body: Raw request body (empty for GET).
        timestamp: The ``X-2PM-Timestamp`` value.
        nonce: The ``X-2PM-Nonce`` value.

    Returns:
        ``METHOD\\nPATH\\nsha256hex(body)\\nTIMESTAMP\\nNONCE`` as UTF-8.
    """
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{body_hash}\n{timestamp}\n{nonce}".encode()


def sign_request(
    secret: bytes,
    caller: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The authentication headers for one request.

    Args:
        secret: The caller's secret (32 bytes from ``callers add``).
        caller: The caller id.
        method: HTTP method.
        path: Request path.
        body: Raw body.
        timestamp: Unix seconds; now when None.
        nonce: Request nonce; 32 random hex characters when None.

    Returns:
        The four ``X-2PM-*`` headers.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    mac = hmac.new(secret, string_to_sign(method, path, body, ts, nonce), hashlib.sha256)
    return {
        HEADER_CALLER: caller,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: mac.hexdigest(),
    }


@dataclass(frozen=True)
class Caller:
    """One caller of the callers file.

    Attributes:
        secret: Its HMAC secret (at least 16 bytes; ``callers add`` mints 32).
        allow: What it may have signed, as function names (``recordBatch``), full signatures
            (``settle(uint256,uint64)``) or EIP-712 primary types; None allows the whole policy.
    """

    secret: bytes
    allow: frozenset[str] | None = None

    def may_call(self, signature: str) -> bool:
        """Whether the allow-list admits a function.

        Args:
            signature: Canonical function signature.

        Returns:
            True when allowed (or when the caller has no allow-list).
        """
        if self.allow is None:
            return True
        return signature in self.allow or signature.split("(", 1)[0] in self.allow

    def may_sign_type(self, primary_type: str) -> bool:
        """Whether the allow-list admits an EIP-712 primary type.

        Args:
            primary_type: The typed data's ``primaryType``.

        Returns:
            True when allowed (or when the caller has no allow-list).
        """
        return self.allow is None or primary_type in self.allow


class Callers:
    """The callers file, JSON, mode 0600, re-read when it changes on disk.

    The file looks like ``{"callers": {"recorder": {"secret": "<64 hex>",
    "allow": ["recordBatch"]}}}``; ``allow`` is optional (absent: the whole policy).

    Args:
        path: The file.

    Raises:
        ConfigError: The file is not 0600 or not valid.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime_ns = -1
        self._callers: dict[str, Caller] = {}
        self._reload_if_changed()

    def get(self, caller: str) -> Caller | None:
        """A caller, re-reading the file if it changed on disk.

        Args:
            caller: Caller id.

        Returns:
            The caller, or None when unknown.
        """
        # A broken edit must not lock everyone out nor let anyone in: keep the old set.
        with contextlib.suppress(ConfigError):
            self._reload_if_changed()
        return self._callers.get(caller)

    def _reload_if_changed(self) -> None:
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._callers = {}
            return
        if mtime_ns == self._mtime_ns:
            return
        self._callers = read_callers(self.path)
        self._mtime_ns = mtime_ns


def read_callers(path: Path) -> dict[str, Caller]:
    """Read a callers file.

    Args:
        path: The file (mode 0600).

    Returns:
        Caller id -> caller.

    Raises:
        ConfigError: Bad permissions or content.
    """
    check_secret_file(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Caller] = {}
        for name, entry in raw["callers"].items():
            allow = entry.get("allow")
            if allow is not None and not (
                isinstance(allow, list) and all(isinstance(a, str) and a for a in allow)
            ):
                raise ValueError("allow must be a list of names")
            out[name] = Caller(
                bytes.fromhex(entry["secret"]), None if allow is None else frozenset(allow)
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a valid callers file") from exc
    for name, caller in out.items():
        if not CALLER_ID.match(name) or len(caller.secret) < 16:
            raise ConfigError(f"{path}: caller {name!r} has a bad id or a short secret")
    return out


def add_caller(
    path: Path, caller: str, *, replace: bool = False, allow: Sequence[str] | None = None
) -> bytes:
    """Mint a 32-byte secret for a caller and store it in the callers file (mode 0600).

    Args:
        path: The callers file (created if missing).
        caller: The new caller id.
        replace: Replace an existing caller's secret (rotation).
        allow: Function names, signatures or EIP-712 primary types this caller may have
            signed; None for the whole policy.

    Returns:
        The new secret; show it once to the operator, who hands it to the caller.

    Raises:
        ConfigError: Bad id, or the caller exists and ``replace`` is false.
    """
    if not CALLER_ID.match(caller):
        raise ConfigError("a caller id is 1-64 characters of A-Z a-z 0-9 _ . -")
    current = read_callers(path) if path.exists() else {}
    if caller in current and not replace:
        raise ConfigError(f"caller {caller!r} exists; use --rotate to replace its secret")
    secret = secrets.token_bytes(32)
    current[caller] = Caller(secret, None if allow is None else frozenset(allow))
    table: dict[str, dict[str, object]] = {}
    for name, entry in sorted(current.items()):
        table[name] = {"secret": entry.secret.hex()}
        if entry.allow is not None:
            table[name]["allow"] = sorted(entry.allow)
    body = {"callers": table}
    write_secret_file(path, json.dumps(body, indent=2).encode() + b"\n", overwrite=True)
    return secret


def verify_request(
    callers: Callers,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    now_s: float,
    clock_skew_s: int,
) -> tuple[str, str]:
    """Check a request's signature headers (not yet the replay set).

    Args:
        callers: The callers.
        headers: Request headers (case-insensitive mapping).
        method: HTTP method.
        path: Request path.
        body: Raw body.
        now_s: The signer's clock, Unix seconds.
        clock_skew_s: Largest accepted distance of the timestamp from ``now_s``.

    Returns:
        (caller id, request nonce).

    Raises:
        NotAuthenticated: ``bad_auth``, ``unknown_caller`` or ``stale_timestamp``.
    """
    caller = headers.get(HEADER_CALLER, "")
    timestamp = headers.get(HEADER_TIMESTAMP, "")
    nonce = headers.get(HEADER_NONCE, "")
    signature = headers.get(HEADER_SIGNATURE, "")
    if not (caller and timestamp and nonce and signature):
        raise NotAuthenticated("bad_auth", "the X-2PM-* authentication headers are missing")
    if not (CALLER_ID.match(caller) and _NONCE.match(nonce) and _TIMESTAMP.match(timestamp)):
        raise NotAuthenticated("bad_auth", "malformed authentication headers")
    entry = callers.get(caller)
    if entry is None:
        raise NotAuthenticated("unknown_caller", f"caller {caller!r} is not known")
    secret = entry.secret
    expected = hmac.new(
        secret, string_to_sign(method, path, body, timestamp, nonce), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise NotAuthenticated("bad_auth", "the request signature does not match")
    if abs(int(timestamp) - now_s) > clock_skew_s:
        raise NotAuthenticated(
            "stale_timestamp",
            f"timestamp {timestamp} is more than {clock_skew_s} s from the signer's clock",
        )
    return caller, nonce
