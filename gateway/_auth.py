"""Sign-In with Ethereum (EIP-4361), server-side sessions and API keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import siwe
from eth_utils import to_checksum_address
from pydantic import ValidationError
from web3 import HTTPProvider

from gateway._cache import TTLCache
from gateway._errors import BadRequest, Conflict, NotAuthenticated, NotFound, SignInRejected
from gateway._settings import GatewaySettings
from gateway._state import State

__all__ = ["ApiKey", "Auth", "Caller", "Session"]

KEY_PREFIX = "twopm_"


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _session_record(raw: bytes) -> tuple[str, float]:
    """A stored session -> (EIP-55 address, expiry in epoch seconds; inf if not recorded)."""
    address, _, expires_at = raw.decode().partition("|")
    return address, float(expires_at) if expires_at else math.inf


def _split_key(presented: str) -> tuple[str, str]:
    """``twopm_<id>_<secret>`` -> (id, secret); NotAuthenticated if it has not that shape."""
    if not presented.startswith(KEY_PREFIX) or presented.count("_") < 2:
        raise NotAuthenticated("malformed API key")
    key_id, _, secret = presented[len(KEY_PREFIX) :].partition("_")
    return key_id, secret


@dataclass(frozen=True)
class Caller:
    """Who is calling, from a session cookie or an API key.

    Attributes:
        address: EIP-55 address of the signed-in wallet (the key's owner for API keys).
        via: ``"session"`` or ``"key"``.
        key_id: The API key's id (``via == "key"``), else None.
        subnets: Subnet ids an API key is limited to; None means every subnet.
        credential: Store key of the session or API key record, when the caller came from
            :meth:`Auth.paying_caller`: billing re-checks that it still exists in the same
            atomic step as the reservation.
    """

    address: str
    via: str
    key_id: str | None = None
    subnets: tuple[int, ...] | None = None
    credential: str | None = None

    @property
    def user(self) -> str:
        """Lower-case address, the key used for per-user state."""
        return self.address.lower()

    def may_use_subnet(self, subnet_id: int) -> bool:
        """Whether this caller may be billed on ``subnet_id``.

        Args:
            subnet_id: The subnet.

        Returns:
            True for sessions and unscoped keys, else whether the key lists the subnet.
        """
        return self.subnets is None or subnet_id in self.subnets


@dataclass(frozen=True)
class Session:
    """A new session.

    Attributes:
        token: Opaque cookie value (only its SHA-256 is stored).
        address: EIP-55 address.
        expires_in_s: Seconds until the session ends.
    """

    token: str
    address: str
    expires_in_s: int


@dataclass(frozen=True)
class ApiKey:
    """An API key's public record.

    Attributes:
        id: Key id (also the middle part of the secret).
        name: Owner's label.
        owner: EIP-55 address of the owner.
        subnets: Allowed subnet ids, or None for all.
        created_at: Unix time (s).
    """

    id: str
    name: str
    owner: str
    subnets: tuple[int, ...] | None
    created_at: int

    def public(self) -> dict[str, Any]:
        """JSON view without any secret.

        Returns:
            ``{id, name, owner, subnets, created_at}``.
        """
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "subnets": None if self.subnets is None else list(self.subnets),
            "created_at": self.created_at,
        }


class Auth:
    """SIWE verification, sessions and API keys over the shared :class:`State`.

    The callers of paid requests are cached here (:meth:`paying_caller`), so the session or
    key lookup costs nothing on the hot path, when that cannot serve a credential that has
    ended: with a state that re-checks credentials at admission (Redis), a logout or
    revocation made by any gateway process stops the next paid request, because admission
    checks the record atomically with the reservation; with a process-local state
    (memory), every logout and revocation goes through this object, which drops the entry,
    and a session's expiry is checked against the time stored in its record.

    Args:
        settings: Gateway settings (domain, chain id, TTLs, RPC for EIP-1271).
        state: Shared state.
        now_s: Clock, seconds since the epoch (injectable for tests).
        caller_cache_max_entries: Bound of the paying-caller cache.
        caller_cache_ttl_s: Seconds a cached caller is reused.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        state: State,
        now_s: Any = time.time,
        *,
        caller_cache_max_entries: int = 10_000,
        caller_cache_ttl_s: float = 60.0,
    ) -> None:
        self._settings = settings
        self._state = state
        self._now_s = now_s
        self._provider = HTTPProvider(settings.rpc_url) if settings.rpc_url else None
        # credential -> (caller, sha256 of the key's secret or "", expiry in epoch seconds)
        self._paying: TTLCache[str, tuple[Caller, str, float]] | None = (
            TTLCache(caller_cache_max_entries, caller_cache_ttl_s)
            if state.rechecks_credentials or not state.shared
            else None
        )

    # ------------------------------------------------------------------ SIWE

    async def issue_nonce(self) -> str:
        """Create a single-use nonce valid for ``nonce_ttl_s``.

        Returns:
            17 alphanumeric characters (``siwe.generate_nonce``, 101 bits).
        """
        nonce = siwe.generate_nonce()
        await self._state.store.set("nonce:" + nonce, b"1", expires_in=self._settings.nonce_ttl_s)
        return nonce

    def _parse(self, message: str) -> siwe.SiweMessage:
        try:
            return siwe.SiweMessage.from_message(message)
        except (ValueError, ValidationError, TypeError) as exc:
            raise BadRequest("the message is not a valid EIP-4361 message") from exc

    def _check_fields(self, msg: siwe.SiweMessage, now: datetime) -> None:
        s = self._settings
        if msg.domain != s.domain:
            raise SignInRejected(
                f"domain must be {s.domain!r}, got {msg.domain!r}", reason="domain-mismatch"
            )
        expected_scheme = urlsplit(s.public_url).scheme
        if msg.scheme is not None and msg.scheme != expected_scheme:
            raise SignInRejected(f"scheme must be {expected_scheme!r}", reason="scheme-mismatch")
        uri = urlsplit(str(msg.uri))
        if f"{uri.scheme}://{uri.netloc}" != s.origin:
            raise SignInRejected(f"URI must be on {s.origin}", reason="uri-mismatch")
        if msg.chain_id != s.chain_id:
            raise SignInRejected(
                f"chain id must be {s.chain_id}, got {msg.chain_id}", reason="chain-id-mismatch"
            )
        issued = msg.issued_at._datetime
        if issued > now + timedelta(seconds=s.clock_skew_s):
            raise SignInRejected("issued-at lies in the future", reason="issued-in-future")
        if issued < now - timedelta(seconds=s.max_message_age_s):
            raise SignInRejected("the message is too old; ask for a new nonce", reason="too-old")
        if msg.expiration_time is not None and now >= msg.expiration_time._datetime:
            raise SignInRejected("the message has expired", reason="expired")
        if msg.not_before is not None and now < msg.not_before._datetime:
            raise SignInRejected(
                "the message is not valid yet (not-before)", reason="not-yet-valid"
            )

    def _verify_signature(self, msg: siwe.SiweMessage, signature: str, now: datetime) -> None:
        """Blocking: ecrecover, and for contract wallets an EIP-1271 ``eth_call``."""
        s = self._settings
        try:
            msg.verify(
                signature,
                domain=s.domain,
                uri=str(msg.uri),
                chain_id=s.chain_id,
                nonce=msg.nonce,
                timestamp=now,
                provider=self._provider,
                strict=True,
            )
        except siwe.ExpiredMessage as exc:
            raise SignInRejected("the message has expired", reason="expired") from exc
        except siwe.NotYetValidMessage as exc:
            raise SignInRejected(
                "the message is not valid yet (not-before)", reason="not-yet-valid"
            ) from exc
        except siwe.InvalidSignature as exc:
            raise SignInRejected(
                "the signature does not match the address", reason="bad-signature"
            ) from exc
        except siwe.VerificationError as exc:
            raise SignInRejected(
                f"verification failed: {type(exc).__name__}", reason="verification-failed"
            ) from exc
        except Exception as exc:  # RPC errors during the EIP-1271 check
            raise SignInRejected(
                "the signature could not be checked", reason="signature-unverifiable"
            ) from exc

    async def verify(self, message: str, signature: str) -> Session:
        """Check a signed SIWE message strictly and open a session.

        Checks: grammar; domain and URI origin are the gateway's; chain id; issued-at not in
        the future (beyond ``clock_skew_s``) nor older than ``max_message_age_s``;
        expiration and not-before; the signature (EOA, or EIP-1271 through ``rpc_url``);
        and last, the nonce is one we issued and it is consumed atomically.

        Args:
            message: The EIP-4361 text that was signed.
            signature: 0x-hex ``personal_sign`` signature (65 bytes for EOAs).

        Returns:
            The new session.

        Raises:
            BadRequest: The message or signature is malformed.
            SignInRejected: Any check failed; its ``reason`` says which
                (``gateway._errors.SIGN_IN_REASONS``).
        """
        if not isinstance(signature, str) or not signature.startswith("0x"):
            raise BadRequest("signature must be 0x-prefixed hex")
        try:
            bytes.fromhex(signature[2:])
        except ValueError as exc:
            raise BadRequest("signature must be 0x-prefixed hex") from exc
        msg = self._parse(message)
        now = datetime.fromtimestamp(self._now_s(), tz=UTC)
        self._check_fields(msg, now)
        await anyio.to_thread.run_sync(self._verify_signature, msg, signature, now)
        if await self._state.consume("nonce:" + msg.nonce) is None:
            if await self._state.store.exists("nonce-used:" + msg.nonce):
                raise SignInRejected("the nonce was already used", reason="nonce-reused")
            raise SignInRejected("unknown or expired nonce", reason="nonce-unknown")
        # A tombstone so a replay is told apart from a nonce never issued; after
        # max_message_age_s the message is refused as too old anyway.
        await self._state.store.set(
            "nonce-used:" + msg.nonce, b"1", expires_in=self._settings.max_message_age_s
        )
        ttl_s = self._settings.session_ttl_s
        if msg.expiration_time is not None:
            left = int((msg.expiration_time._datetime - now).total_seconds())
            ttl_s = max(1, min(ttl_s, left))
        token = secrets.token_urlsafe(32)
        address = to_checksum_address(msg.address)
        expires_at = int(self._now_s()) + ttl_s
        await self._state.store.set(
            "session:" + _sha256_hex(token), f"{address}|{expires_at}".encode(), expires_in=ttl_s
        )
        return Session(token=token, address=address, expires_in_s=ttl_s)

    async def session_address(self, token: str) -> str | None:
        """Address of a live session.

        Args:
            token: The cookie value.

        Returns:
            EIP-55 address, or None when unknown, expired or logged out.
        """
        raw = await self._state.get("session:" + _sha256_hex(token))
        return None if raw is None else _session_record(raw)[0]

    async def logout(self, token: str) -> None:
        """End a session.

        Args:
            token: The cookie value.
        """
        credential = "session:" + _sha256_hex(token)
        await self._state.store.delete(credential)
        self.forget(credential)

    async def paying_caller(self, *, bearer: str | None, session_token: str | None) -> Caller:
        """The caller of a paid request, from an API key or else a session cookie.

        Served from a cache when the state re-checks credentials at admission (see the
        class doc); otherwise exactly :meth:`caller_from_key` or :meth:`session_address`.

        Args:
            bearer: The ``Authorization: Bearer`` token, if any (takes precedence).
            session_token: The session cookie, if any.

        Returns:
            The caller, with :attr:`Caller.credential` set.

        Raises:
            NotAuthenticated: No credential, or an unknown, expired or revoked one.
        """
        if bearer is not None:
            key_id, secret = _split_key(bearer)
            credential = "key:" + key_id
            secret_sha256 = _sha256_hex(secret)
        elif session_token:
            credential = "session:" + _sha256_hex(session_token)
            secret_sha256 = ""
        else:
            raise NotAuthenticated("sign in with Ethereum or send an API key")
        now = self._now_s()
        if self._paying is not None:
            hit = self._paying.get(credential)
            if hit is not None and hit[2] > now and hmac.compare_digest(hit[1], secret_sha256):
                return hit[0]
        expires_at = math.inf  # API keys live until revoked
        if bearer is not None:
            caller = await self.caller_from_key(bearer)
        else:
            raw = await self._state.get(credential)
            if raw is None:
                raise NotAuthenticated("the session has ended; sign in again")
            address, expires_at = _session_record(raw)
            caller = Caller(address=address, via="session")
        caller = replace(caller, credential=credential)
        if self._paying is not None:
            self._paying.put(credential, (caller, secret_sha256, expires_at))
        return caller

    def forget(self, credential: str) -> None:
        """Drop a cached paying caller (after a logout, a revocation, or a failed re-check).

        Args:
            credential: :attr:`Caller.credential`.
        """
        if self._paying is not None:
            self._paying.drop(credential)

    # ------------------------------------------------------------------ API keys

    async def create_key(
        self, owner: str, name: str, subnets: list[int] | None
    ) -> tuple[ApiKey, str]:
        """Create an API key; the secret is returned once and only its hash is kept.

        Args:
            owner: EIP-55 address of the session that asks.
            name: Label (at most 64 characters).
            subnets: Subnet ids the key may bill, or None for all.

        Returns:
            The key's record and its secret ``twopm_<id>_<secret>``.

        Raises:
            BadRequest: Name too long or bad subnet ids.
            Conflict: The owner already holds ``max_keys_per_owner`` keys.
        """
        if len(name) > 64:
            raise BadRequest("name must be at most 64 characters")
        if subnets is not None and (len(subnets) > 256 or any(s < 0 for s in subnets)):
            raise BadRequest("subnets must be at most 256 non-negative ids")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = ApiKey(
            id=key_id,
            name=name,
            owner=owner,
            subnets=None if subnets is None else tuple(sorted(set(subnets))),
            created_at=int(self._now_s()),
        )
        limit = self._settings.max_keys_per_owner

        def add(ids: list[str] | None) -> list[str]:
            ids = list(ids or [])
            if len(ids) >= limit:
                raise Conflict(f"an address may hold at most {limit} API keys; revoke one")
            return [*ids, key_id]

        await self._state.update_json("keys_of:" + owner.lower(), add)
        stored = {**record.public(), "secret_sha256": _sha256_hex(secret)}
        await self._state.store.set("key:" + key_id, json.dumps(stored).encode())
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    async def _load_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        raw = await self._state.store.get("key:" + key_id)
        if raw is None:
            return None
        d = json.loads(raw)
        subnets = d.get("subnets")
        return (
            ApiKey(
                id=d["id"],
                name=d["name"],
                owner=d["owner"],
                subnets=None if subnets is None else tuple(subnets),
                created_at=d["created_at"],
            ),
            d["secret_sha256"],
        )

    async def list_keys(self, owner: str) -> list[ApiKey]:
        """The owner's live keys.

        Args:
            owner: EIP-55 address.

        Returns:
            Keys, oldest first.
        """
        raw = await self._state.store.get("keys_of:" + owner.lower())
        keys = []
        for key_id in json.loads(raw) if raw else []:
            loaded = await self._load_key(key_id)
            if loaded is not None:
                keys.append(loaded[0])
        return keys

    async def revoke_key(self, owner: str, key_id: str) -> None:
        """Revoke one of the owner's keys; it stops working at once.

        Args:
            owner: EIP-55 address of the session.
            key_id: The key.

        Raises:
            NotFound: No such key of this owner.
        """
        loaded = await self._load_key(key_id)
        if loaded is None or loaded[0].owner.lower() != owner.lower():
            raise NotFound(f"no API key {key_id!r} of yours")
        await self._state.store.delete("key:" + key_id)
        self.forget("key:" + key_id)
        await self._state.update_json(
            "keys_of:" + owner.lower(), lambda ids: [i for i in (ids or []) if i != key_id]
        )

    async def caller_from_key(self, presented: str) -> Caller:
        """Authenticate an ``Authorization: Bearer`` API key.

        Args:
            presented: The bearer token.

        Returns:
            The caller (the key's owner, with the key's subnet scope).

        Raises:
            NotAuthenticated: Malformed, unknown or revoked key.
        """
        key_id, secret = _split_key(presented)
        loaded = await self._load_key(key_id) if len(key_id) == 16 else None
        if loaded is None or not hmac.compare_digest(loaded[1], _sha256_hex(secret)):
            raise NotAuthenticated("unknown or revoked API key")
        key = loaded[0]
        return Caller(address=key.owner, via="key", key_id=key.id, subnets=key.subnets)
