"""The signer's one typed settings object, read from ``TWOPM_SIGNER_*`` once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from signer._errors import ConfigError

_PREFIX = "TWOPM_SIGNER_"


@dataclass(frozen=True)
class SignerSettings:
    """Where the signer keeps its files and how it listens.

    Every field can be set from the environment as ``TWOPM_SIGNER_<FIELD NAME IN CAPITALS>``
    (for example ``TWOPM_SIGNER_STATE_DIR``); command-line flags override the environment.
    Paths left empty default to files inside :attr:`state_dir`.
    """

    state_dir: Path = Path(".state/signer")
    """Directory holding the keystore, policy, callers, database, audit log and lock file."""
    keystore: Path | None = None
    """Web3 Secret Storage (v3, scrypt) file. Default ``state_dir/keystore.json``."""
    password_file: Path | None = None
    """File (mode 0600) holding the keystore password; when unset, ``serve`` prompts."""
    policy: Path | None = None
    """Policy TOML. Default ``state_dir/policy.toml``."""
    callers: Path | None = None
    """Callers file (JSON, mode 0600: caller id -> hex secret).

    Default ``state_dir/callers.json``."""
    db: Path | None = None
    """SQLite database (nonce, idempotency records, replay set). Default ``state_dir/signer.db``."""
    audit_log: Path | None = None
    """Hash-chained JSON-lines audit log. Default ``state_dir/audit.jsonl``."""
    host: str = "127.0.0.1"
    """Loopback address to listen on (non-loopback addresses are refused)."""
    port: int = 8547
    """TCP port; 0 picks a free one (reported in the ready file)."""
    uds: Path | None = None
    """Unix socket path; when set, the signer listens there (mode 0600) instead of TCP."""
    max_body_bytes: int = 64 * 1024
    """Largest request body accepted, in bytes; larger bodies get 413."""
    clock_skew_s: int = 30
    """Largest accepted difference between a request's timestamp and the signer's clock, seconds."""
    replay_cache_max: int = 100_000
    """Bound on remembered caller nonces inside the skew window; beyond it requests get 429."""
    idempotency_retention_s: int = 7 * 24 * 3600
    """How long signed records (and their idempotency keys) are kept, seconds. Must cover the
    policy's rolling windows (checked at start)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Unknown ``TWOPM_SIGNER_*`` variables, kept only to report them."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SignerSettings:
        """Read the settings from ``TWOPM_SIGNER_*`` variables.

        Args:
            environ: The environment; ``os.environ`` when None. Nothing else in the package
                reads the environment.

        Returns:
            The settings.

        Raises:
            ConfigError: A variable has a value of the wrong type, or the name is unknown.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        unknown: dict[str, str] = {}
        for key, raw in env.items():
            if not key.startswith(_PREFIX):
                continue
            name = key[len(_PREFIX) :].lower()
            if name not in fields:
                unknown[key] = raw
                continue
            kwargs[name] = _coerce(key, raw, fields[name].type)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def with_overrides(self, **overrides: object) -> SignerSettings:
        """A copy with the given fields replaced, skipping None values.

        Args:
            **overrides: Field name -> value (for example from command-line flags).

        Returns:
            The new settings.
        """
        return dataclasses.replace(
            self,
            **{k: v for k, v in overrides.items() if v is not None},  # type: ignore[arg-type]
        )

    @property
    def keystore_path(self) -> Path:
        """The keystore file."""
        return self.keystore or self.state_dir / "keystore.json"

    @property
    def policy_path(self) -> Path:
        """The policy file."""
        return self.policy or self.state_dir / "policy.toml"

    @property
    def callers_path(self) -> Path:
        """The callers file."""
        return self.callers or self.state_dir / "callers.json"

    @property
    def db_path(self) -> Path:
        """The SQLite database."""
        return self.db or self.state_dir / "signer.db"

    @property
    def audit_path(self) -> Path:
        """The audit log."""
        return self.audit_log or self.state_dir / "audit.jsonl"

    @property
    def lock_path(self) -> Path:
        """The lock file the running service holds (admin commands refuse while it is held)."""
        return self.db_path.with_suffix(".lock")


def _coerce(key: str, raw: str, annotation: object) -> object:
    text = str(annotation)
    try:
        if "Path" in text:
            return None if not raw and "None" in text else Path(raw)
        if text == "int":
            return int(raw)
        return raw
    except ValueError as exc:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc
