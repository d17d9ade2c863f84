"""Write a complete signer state directory in one call (for ``twopm up`` and tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from signer._auth import add_caller
from signer._errors import ConfigError
from signer._keystore import SCRYPT_N, write_keystore, write_secret_file
from signer._policy import parse_policy


@dataclass(frozen=True)
class SignerState:
    """What :func:`init_state` wrote.

    Attributes:
        state_dir: The directory (pass it as ``--state-dir``).
        password_file: The 0600 password file (pass it as ``--password-file``).
        address: The operator address.
        secrets: Caller id -> secret (hand each to its service).
    """

    state_dir: Path
    password_file: Path
    address: str
    secrets: dict[str, bytes]


def init_state(
    state_dir: Path,
    *,
    private_key: bytes,
    password: str,
    policy_toml: str,
    callers: Mapping[str, Sequence[str] | None],
    password_file: Path | None = None,
    scrypt_n: int = SCRYPT_N,
) -> SignerState:
    """Create a signer state directory: keystore, password file, policy and callers.

    Args:
        state_dir: New or empty directory (created with mode 0700).
        private_key: The operator key, 32 bytes.
        password: Keystore password.
        policy_toml: The policy (for example from :func:`signer.policy_for_deployment`).
        callers: Caller id -> allow-list (None for the whole policy).
        password_file: Where to write the password (0600); ``state_dir/password`` when None.
        scrypt_n: Keystore scrypt cost; lower only for throwaway keys.

    Returns:
        The paths, address and caller secrets.

    Raises:
        ConfigError: The directory already holds a keystore, or the policy is invalid.
    """
    parse_policy(policy_toml, source="policy_toml")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keystore = state_dir / "keystore.json"
    if keystore.exists():
        raise ConfigError(f"{keystore} already exists; refusing to overwrite it")
    address = write_keystore(keystore, private_key, password, scrypt_n=scrypt_n)
    password_path = password_file or state_dir / "password"
    write_secret_file(password_path, password.encode() + b"\n", overwrite=True)
    write_secret_file(state_dir / "policy.toml", policy_toml.encode(), overwrite=True)
    secrets = {
        name: add_caller(state_dir / "callers.json", name, allow=allow)
        for name, allow in callers.items()
    }
    return SignerState(state_dir, password_path, address, secrets)
