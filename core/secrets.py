"""Secret files: passwords and private keys that only their owner may read.

Every part that reads a secret from disk (the SDK's wallets, a model owner's publishing key, the
signer's keystore) applies the same rule as the signer: a regular file with no group or other
permission bit (mode 0600 or 0400), so a key never sits readable by another account.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PrivateFileError", "check_private_file", "read_private_file"]


class PrivateFileError(Exception):
    """A secret file is missing, not a regular file, or readable or writable by others."""


def check_private_file(path: str | Path, what: str) -> Path:
    """Check that a secret file is a regular file of this user's that only its owner may read or write.

    Args:
        path: A password, private-key, caller-secret or TLS key file.
        what: How to name the file in messages (``"key file"``, ``"TLS key"``).

    Returns:
        The path, for reading in whatever form the caller needs (text or bytes).

    Raises:
        PrivateFileError: The file cannot be read, is not a regular file, belongs to another
            user, or has any group or other permission bit set (it must be 0600 or 0400); the
            message says how to fix it.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise PrivateFileError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise PrivateFileError(f"{what} {path} is not a regular file")
    if st.st_uid != os.getuid():
        # Its owner could rewrite it (a key swapped under the signer), even at mode 0600.
        raise PrivateFileError(f"{what} {path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        raise PrivateFileError(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}, readable by others;"
            f" run: chmod 600 {path}"
        )
    return path


def read_private_file(path: str | Path, what: str) -> str:
    """Read a secret file that only its owner may read or write.

    Args:
        path: A password or private-key file.
        what: How to name the file in messages (``"password file"``, ``"key file"``).

    Returns:
        The file's text.

    Raises:
        PrivateFileError: The file cannot be read, is not a regular file, or has any group or
            other permission bit set (it must be 0600 or 0400); the message says how to fix it.
    """
    path = check_private_file(path, what)
    try:
        return path.read_text()
    except OSError as exc:
        raise PrivateFileError(f"cannot read {what} {path}: {exc.strerror}") from exc
