"""Helpers for the gateway tests: SIWE signing; ``serve`` and ``free_port`` from ``service_support``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from service_support import free_port, serve

__all__ = [
    "CHAIN_ID",
    "DOMAIN",
    "PUBLIC_URL",
    "free_port",
    "future",
    "iso",
    "serve",
    "session_headers",
    "sign",
    "sign_in",
    "siwe_message",
]

PUBLIC_URL = "https://gw.test"
DOMAIN = "gw.test"
CHAIN_ID = 534351


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_message(
    address: str,
    nonce: str,
    *,
    domain: str = DOMAIN,
    uri: str = PUBLIC_URL + "/login",
    chain_id: int = CHAIN_ID,
    issued_at: datetime | None = None,
    expiration: datetime | None = None,
    not_before: datetime | None = None,
    statement: str | None = "Sign in to 2PM",
) -> str:
    """EIP-4361 text (serialised as the siwe-vectors README describes)."""
    issued_at = issued_at or datetime.now(UTC)
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    if statement is not None:
        lines += [statement, ""]
    lines += [
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {iso(issued_at)}",
    ]
    if expiration is not None:
        lines.append(f"Expiration Time: {iso(expiration)}")
    if not_before is not None:
        lines.append(f"Not Before: {iso(not_before)}")
    return "\n".join(lines)


def sign(message: str, private_key: str) -> str:
    signed = Account.sign_message(encode_defunct(text=message), private_key)
    return "0x" + signed.signature.hex().removeprefix("0x")


def sign_in(client: httpx.Client, private_key: str, **kwargs: Any) -> str:
    """Full SIWE round trip; returns the session token (cookie value)."""
    account = Account.from_key(private_key)
    nonce = client.get("/v1/auth/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce, **kwargs)
    r = client.post(
        "/v1/auth/verify", json={"message": message, "signature": sign(message, private_key)}
    )
    assert r.status_code == 200, r.text
    return str(r.cookies["twopm_session"])


def session_headers(token: str) -> dict[str, str]:
    # The cookie is Secure; tests speak plain HTTP on loopback, so send it by hand.
    return {"Cookie": f"twopm_session={token}"}


def future(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
