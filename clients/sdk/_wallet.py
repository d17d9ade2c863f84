"""A local Ethereum key: loads from a private key or an encrypted keystore, signs SIWE and EIP-712."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import siwe
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from pydantic import ValidationError

from clients.sdk._exceptions import InvalidInput, WalletError
from contracts.keys import KeyLoadError, load_key_file, load_keystore

__all__ = ["Wallet"]

SIWE_STATEMENT = "Sign in to 2PM"
"""Default human-readable statement of the SIWE messages the SDK builds."""


def _iso(moment: datetime) -> str:
    """RFC 3339 time in UTC with milliseconds and a ``Z``, as EIP-4361 examples write it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Wallet:
    """An Ethereum account whose key is held in this process.

    Build one with :meth:`from_key`, :meth:`from_keystore` or :meth:`create`; the key is
    never shown by ``repr`` or ``str``.

    Args:
        account: An eth-account local account.
    """

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_key(cls, private_key: str | bytes) -> Wallet:
        """A wallet from a raw private key.

        Args:
            private_key: 32 bytes, or 64 hex digits with or without ``0x``.

        Returns:
            The wallet.

        Raises:
            WalletError: The key is malformed or out of range.
        """
        try:
            return cls(Account.from_key(private_key))
        except (ValueError, TypeError):
            raise WalletError("not a valid private key (expected 32 bytes of hex)") from None

    @classmethod
    def from_key_file(cls, path: str | Path) -> Wallet:
        """A wallet from a file holding a hex private key, readable only by its owner.

        Args:
            path: File (mode 0600 or 0400) whose text is 64 hex digits, with or without ``0x``.

        Returns:
            The wallet.

        Raises:
            WalletError: The file is missing, readable or writable by group or others, or does
                not hold a valid key.
        """
        try:
            return cls(load_key_file(path))
        except KeyLoadError as exc:
            raise WalletError(str(exc)) from None

    @classmethod
    def create(cls) -> Wallet:
        """A wallet with a fresh random key (``os.urandom`` through eth-account).

        Returns:
            The wallet.
        """
        return cls(Account.create())

    @classmethod
    def from_keystore(
        cls,
        path: str | Path,
        *,
        password: str | None = None,
        password_file: str | Path | None = None,
        prompt: Callable[[str], str] | None = getpass.getpass,
    ) -> Wallet:
        """A wallet from an encrypted JSON keystore (Web3 Secret Storage, as geth writes it).

        The password comes from ``password``, else the first line of ``password_file`` (which
        must have mode 0600 or 0400, as the signer demands), else ``prompt`` (the terminal,
        without echo, by default).

        Args:
            path: Keystore file.
            password: The password itself.
            password_file: File whose first line is the password.
            prompt: Asks for the password; None forbids asking (non-interactive use).

        Returns:
            The wallet.

        Raises:
            WalletError: The file is missing or not a keystore, the password file is missing or
                readable by group or others, no password is available, or the password is wrong.
        """
        try:
            account = load_keystore(
                path, password=password, password_file=password_file, prompt=prompt
            )
        except KeyLoadError as exc:
            raise WalletError(str(exc)) from None
        return cls(account)

    def to_keystore(
        self, path: str | Path, password: str, *, iterations: int | None = None
    ) -> Path:
        """Write this key as an encrypted keystore readable only by its owner (mode 0600).

        Args:
            path: File to create (it must not exist).
            password: Encryption password.
            iterations: scrypt work factor ``n``; eth-account's default (2^18) when None.

        Returns:
            The path written.

        Raises:
            WalletError: The file exists or cannot be written.
        """
        path = Path(path)
        kwargs: dict[str, Any] = {} if iterations is None else {"iterations": iterations}
        data = json.dumps(Account.encrypt(self._account.key, password, **kwargs))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise WalletError(f"cannot create keystore {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "w") as out:
            out.write(data)
        return path

    # ------------------------------------------------------------------ identity

    @property
    def address(self) -> ChecksumAddress:
        """EIP-55 checksummed address."""
        return self._account.address

    def __repr__(self) -> str:
        return f"Wallet({self.address})"

    def _private_key_hex(self) -> str:
        """The private key as 0x-hex (for the SDK's own transaction sender only)."""
        return "0x" + bytes(self._account.key).hex()

    # ------------------------------------------------------------------ signing

    def sign_message(self, text: str) -> str:
        """Sign text the way ``personal_sign`` (EIP-191 version 0x45) does.

        Args:
            text: The message.

        Returns:
            0x-hex 65-byte signature ``r || s || v``.
        """
        signed = self._account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex()

    def siwe_message(
        self,
        *,
        domain: str,
        uri: str,
        chain_id: int,
        nonce: str,
        statement: str | None = SIWE_STATEMENT,
        issued_at: datetime | None = None,
        expires_in_s: float | None = None,
        scheme: str | None = None,
    ) -> str:
        """An EIP-4361 message for this address, built with ``siwe`` (signinwithethereum 5).

        Args:
            domain: The RFC 3986 authority asking for the sign-in (``gw.example.org``).
            uri: The resource the sign-in is for, on that domain's origin.
            chain_id: EIP-155 chain id (534351 on Scroll Sepolia).
            nonce: The gateway's nonce (``GET /v1/auth/nonce``), at least 8 alphanumerics.
            statement: Human-readable line shown by wallets; None leaves it out.
            issued_at: Time of issue; now when None.
            expires_in_s: If given, an ``Expiration Time`` this many seconds after issue.
            scheme: URI scheme of the domain, when it must be stated.

        Returns:
            The message text, ready to sign.

        Raises:
            InvalidInput: A field does not fit EIP-4361 (bad domain, URI or nonce).
        """
        issued = issued_at or datetime.now(UTC)
        fields: dict[str, Any] = {
            "domain": domain,
            "address": self.address,
            "uri": uri,
            "version": "1",
            "chain_id": chain_id,
            "nonce": nonce,
            "issued_at": _iso(issued),
            "statement": statement,
            "scheme": scheme,
        }
        if expires_in_s is not None:
            fields["expiration_time"] = _iso(issued + timedelta(seconds=expires_in_s))
        try:
            return str(siwe.SiweMessage(**fields).prepare_message())
        except (ValidationError, ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot build a SIWE message: {exc}") from None

    def sign_siwe(self, **fields: Any) -> tuple[str, str]:
        """Build an EIP-4361 message (see :meth:`siwe_message`) and sign it.

        Args:
            **fields: The keyword arguments of :meth:`siwe_message`.

        Returns:
            ``(message, signature)`` as ``POST /v1/auth/verify`` takes them.

        Raises:
            InvalidInput: A field does not fit EIP-4361.
        """
        message = self.siwe_message(**fields)
        return message, self.sign_message(message)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """Sign EIP-712 typed data (``eth_signTypedData_v4`` form).

        Args:
            typed_data: ``{types, primaryType, domain, message}``.

        Returns:
            The 65-byte signature ``r || s || v``.

        Raises:
            InvalidInput: The typed data is malformed.
        """
        try:
            encoded = encode_typed_data(full_message=typed_data)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"malformed EIP-712 typed data: {exc}") from exc
        return bytes(self._account.sign_message(encoded).signature)
