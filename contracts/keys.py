"""Loading a user's own Ethereum key: an encrypted keystore or a raw key file.

One loader for every part where a person signs with their own wallet (the SDK's ``Wallet``, a model
owner's ``twopm publish --keystore``). Keystores are Web3 Secret Storage (version 3, as geth and
eth-account write them), decrypted by eth-account; password and key files follow
:func:`core.secrets.check_private_file` (mode 0600 or 0400, owned by this user). The signer keeps its
own keystore handling: it also creates keystores and refuses an empty password.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from core.secrets import PrivateFileError, read_private_file

__all__ = ["KeyLoadError", "load_key_file", "load_keystore"]


class KeyLoadError(Exception):
    """A key or keystore could not be loaded; the message names the file and how to fix it."""


def load_key_file(path: str | Path) -> LocalAccount:
    """The account whose private key a file holds as hex (with or without ``0x``).

    Args:
        path: Key file (mode 0600 or 0400).

    Returns:
        The account, key in memory.

    Raises:
        KeyLoadError: The file is missing or readable by others, or does not hold 32 bytes of hex.
    """
    try:
        text = read_private_file(path, "key file").strip()
    except PrivateFileError as exc:
        raise KeyLoadError(str(exc)) from None
    try:
        account: LocalAccount = Account.from_key(text)
    except (ValueError, TypeError):
        # Deliberately does not echo the text: it may be a key with a typo.
        raise KeyLoadError(
            f"key file {path} does not hold a valid private key (expected 32 bytes of hex)"
        ) from None
    return account


def load_keystore(
    path: str | Path,
    *,
    password: str | None = None,
    password_file: str | Path | None = None,
    prompt: Callable[[str], str] | None = getpass.getpass,
) -> LocalAccount:
    """Decrypt an encrypted JSON keystore (Web3 Secret Storage; scrypt or pbkdf2, ~1 s).

    The password is ``password``, else the first line of ``password_file``, else what ``prompt``
    returns (the terminal, without echo, by default).

    Args:
        path: Keystore file.
        password: The password itself.
        password_file: File whose first line is the password (mode 0600 or 0400).
        prompt: Asks for the password; None forbids asking (non-interactive use).

    Returns:
        The account, key in memory.

    Raises:
        KeyLoadError: The keystore is missing or not a keystore, the password file is missing or
            readable by others, no password is available, or the password is wrong.
    """
    path = Path(path)
    try:
        keystore = json.loads(path.read_text())
    except OSError as exc:
        raise KeyLoadError(f"cannot read keystore {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise KeyLoadError(f"{path} is not a JSON keystore") from None
    if password is None and password_file is not None:
        try:
            lines = read_private_file(password_file, "password file").splitlines()
        except PrivateFileError as exc:
            raise KeyLoadError(str(exc)) from None
        password = lines[0] if lines else ""
    if password is None:
        if prompt is None:
            raise KeyLoadError("the keystore needs a password: pass password or password_file")
        password = prompt(f"Password for {path.name}: ")
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        # eth-account says "MAC mismatch" for a wrong password; anything else is a broken file.
        message = str(exc).lower()
        if "mac" in message or "password" in message:
            raise KeyLoadError(
                f"wrong password for keystore {path}"
                + (f" (from {password_file})" if password_file is not None else "")
            ) from None
        raise KeyLoadError(f"{path} is not a usable keystore: {exc}") from None
    except (KeyError, TypeError, NotImplementedError):
        raise KeyLoadError(f"{path} is not a usable keystore") from None
    account: LocalAccount = Account.from_key(key)
    return account
