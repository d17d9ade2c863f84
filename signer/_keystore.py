"""The operator key at rest: Web3 Secret Storage (keystore v3, scrypt) and secret files.

The key is only ever held decrypted in the memory of the ``serve`` process. It is never
printed, logged, returned over the API or accepted on the command line.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from core.secrets import PrivateFileError, check_private_file
from signer._errors import ConfigError

#: Prompt used when no password file is given; replaced in tests only through the argument.
PromptFn = Callable[[str], str]


def check_secret_file(path: Path) -> None:
    """Refuse a secret file that others could read or write.

    The rule is :func:`core.secrets.check_private_file`, shared with the SDK and the CLI.

    Args:
        path: A password, key, keystore or callers file.

    Raises:
        ConfigError: The file is missing, not a regular file, not owned by this user, or has
            any group/other permission bit set (it must be 0600 or stricter).
    """
    try:
        check_private_file(path, "secret file")
    except PrivateFileError as exc:
        raise ConfigError(str(exc)) from exc


def write_secret_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write a file created with mode 0600, fsync'd, atomically replacing when allowed.

    Args:
        path: Destination.
        data: Content.
        overwrite: Replace an existing file; otherwise an existing file is an error.

    Raises:
        ConfigError: The file exists and ``overwrite`` is false, or it cannot be written.
    """
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def read_password(
    password_file: Path | None,
    *,
    confirm: bool = False,
    prompt: PromptFn = getpass.getpass,
) -> str:
    """Read the keystore password from a 0600 file or a terminal prompt, never from argv.

    Args:
        password_file: File whose content (one trailing newline stripped) is the password;
            None to prompt.
        confirm: Prompt twice and require the same answer (for new keystores).
        prompt: The prompt function (``getpass.getpass``).

    Returns:
        The password.

    Raises:
        ConfigError: The file is not 0600, the password is empty, or the two entries differ.
    """
    if password_file is not None:
        check_secret_file(password_file)
        password = password_file.read_text(encoding="utf-8")
        password = password.removesuffix("\n").removesuffix("\r")
    else:
        try:
            password = prompt("Keystore password: ")
            if confirm and prompt("Repeat password: ") != password:
                raise ConfigError("the two passwords differ")
        except EOFError as exc:
            raise ConfigError("no password given (use --password-file in scripts)") from exc
    if not password:
        raise ConfigError("the password is empty")
    return password


def read_private_key(key_file: Path | None, *, prompt: PromptFn = getpass.getpass) -> bytes:
    """Read a hex private key to import, from a 0600 file or a hidden prompt.

    Args:
        key_file: File holding the 32-byte key as hex (with or without 0x); None to prompt.
        prompt: The prompt function.

    Returns:
        The 32 key bytes.

    Raises:
        ConfigError: The file is not 0600 or the text is not a 32-byte hex key.
    """
    if key_file is not None:
        check_secret_file(key_file)
        text = key_file.read_text(encoding="utf-8").strip()
    else:
        try:
            text = prompt("Private key (hex): ").strip()
        except EOFError as exc:
            raise ConfigError("no private key given (use --key-file in scripts)") from exc
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        # Deliberately does not echo the text: it may be a key with a typo.
        raise ConfigError("the private key must be 32 bytes of hex")
    return key


#: scrypt cost parameter N of new keystores: 2**18 with r=8, p=1, as geth's "standard" keystore
#: (go-ethereum accounts/keystore StandardScryptN) and eth-account's default.
SCRYPT_N = 2**18


def write_keystore(
    path: Path, private_key: bytes, password: str, *, scrypt_n: int = SCRYPT_N
) -> str:
    """Encrypt a key into a new keystore v3 file (scrypt, r=8, p=1).

    Args:
        path: Destination; must not exist.
        private_key: 32 key bytes.
        password: Encryption password.
        scrypt_n: scrypt cost N (a power of two); lower it only for throwaway test keys.

    Returns:
        The account's checksummed address.

    Raises:
        ConfigError: The file exists, the key is invalid, or the file cannot be written.
    """
    try:
        account = Account.from_key(private_key)
    except Exception as exc:  # eth-keys raises ValidationError for out-of-range keys
        raise ConfigError("the private key is not a valid secp256k1 key") from exc
    blob = Account.encrypt(private_key, password, kdf="scrypt", iterations=scrypt_n)
    write_secret_file(path, json.dumps(blob, indent=2).encode() + b"\n")
    return str(account.address)


def keystore_address(path: Path) -> str:
    """The address stored (unencrypted) in a keystore file, without decrypting it.

    Args:
        path: Keystore file.

    Returns:
        The checksummed address.

    Raises:
        ConfigError: The file cannot be read or has no address.
    """
    blob = _read_keystore(path)
    raw = blob.get("address")
    if not isinstance(raw, str):
        raise ConfigError(f"{path} has no address field")
    from eth_utils import to_checksum_address

    return str(to_checksum_address("0x" + raw.removeprefix("0x")))


def load_account(path: Path, password: str) -> LocalAccount:
    """Decrypt a keystore (about one second of scrypt).

    Args:
        path: Keystore file (mode 0600).
        password: Its password.

    Returns:
        The account holding the key in memory.

    Raises:
        ConfigError: Bad permissions, not a keystore, or a wrong password.
    """
    check_secret_file(path)
    blob = _read_keystore(path)
    try:
        key = Account.decrypt(blob, password)
    except ValueError as exc:
        raise ConfigError(f"cannot decrypt {path}: wrong password or corrupt keystore") from exc
    account: LocalAccount = Account.from_key(key)
    return account


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not a JSON keystore") from exc
    if not isinstance(blob, dict) or blob.get("version") != 3 or "crypto" not in blob:
        raise ConfigError(f"{path} is not a version 3 keystore")
    return blob
