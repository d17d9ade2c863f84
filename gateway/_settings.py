"""The gateway's one settings object, read from ``TWOPM_GATEWAY_*`` once."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway._errors import ConfigurationError

__all__ = ["ENV_PREFIX", "GatewaySettings", "RateTier"]

ENV_PREFIX = "TWOPM_GATEWAY_"

SCROLL_SEPOLIA_CHAIN_ID = 534351
"""EIP-155 chain id of Scroll Sepolia (https://docs.scroll.io/en/developers/developer-quickstart/)."""


@dataclass(frozen=True)
class RateTier:
    """A stake tier and the request rate it buys.

    Attributes:
        name: Tier name shown by ``GET /v1/me``.
        min_stake_wei: Active stake (wei of ETH) needed for this tier.
        rate_per_s: Token-bucket refill rate in requests per second.
        burst: Token-bucket capacity in requests.
    """

    name: str
    min_stake_wei: int
    rate_per_s: float
    burst: int


DEFAULT_TIERS = (
    RateTier("basic", 0, 5.0, 20),
    RateTier("silver", 10**18, 50.0, 200),
    RateTier("gold", 10 * 10**18, 500.0, 2000),
)


def _parse_tiers(text: str) -> tuple[RateTier, ...]:
    """Parse ``name:min_stake_wei:rate_per_s:burst`` entries separated by commas."""
    tiers = []
    for part in text.split(","):
        bits = part.strip().split(":")
        if len(bits) != 4:
            raise ConfigurationError(f"tier {part!r} is not name:min_stake_wei:rate_per_s:burst")
        name, stake, rate, burst = bits
        try:
            tiers.append(RateTier(name, int(stake), float(rate), int(burst)))
        except ValueError as exc:
            raise ConfigurationError(f"tier {part!r} has a non-numeric field") from exc
    if not tiers or any(t.rate_per_s <= 0 or t.burst < 1 for t in tiers):
        raise ConfigurationError("every tier needs rate_per_s > 0 and burst >= 1")
    return tuple(sorted(tiers, key=lambda t: t.min_stake_wei))


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway is configured with.

    Each field is read from ``TWOPM_GATEWAY_<FIELD NAME IN CAPITALS>`` by :meth:`from_env`;
    nothing else in the gateway reads the environment.
    """

    public_url: str = "https://localhost:8443"
    """Origin users reach the gateway at. Its authority is the SIWE ``domain`` and the SIWE
    ``URI`` must have this origin."""
    chain_id: int = SCROLL_SEPOLIA_CHAIN_ID
    """EIP-155 chain id that SIWE messages and EIP-712 caps must name."""
    rpc_url: str | None = None
    """JSON-RPC endpoint of the chain (reads, EIP-1271 checks, broadcasting)."""
    deployment_file: Path | None = None
    """JSON file with a ``contracts`` (or ``addresses``) object: contract name -> address."""
    contracts: Mapping[str, str] = field(default_factory=dict)
    """Contract name -> address; overrides entries of ``deployment_file``. From the env as a
    JSON object."""
    redis_url: str | None = None
    """Redis URL; when unset the gateway keeps its state in memory (one process)."""
    redis_namespace: str = "twopm"
    """Key prefix of everything the gateway writes to Redis."""
    queue_path: Path = Path(".state/gateway-receipts.sqlite3")
    """SQLite file of the durable receipt queue in memory mode; it also keeps sessions, API
    keys and SIWE nonces, and one process at a time holds it (``<file>.lock``)."""
    store_max_entries: int = 100_000
    """Bound of the records (sessions, keys, nonces) kept in the SQLite file in memory mode."""
    signer_url: str | None = None
    """Base URL of the signer service."""
    signer_caller_id: str = "gateway"
    """Caller id the gateway authenticates to the signer with."""
    signer_secret: str | None = None
    """Shared secret for the signer caller id."""
    nonce_ttl_s: int = 300
    """Seconds a SIWE nonce stays valid after it was issued."""
    session_ttl_s: int = 86_400
    """Seconds a session lives after sign-in."""
    clock_skew_s: int = 60
    """Seconds a SIWE ``Issued At`` may lie in the future."""
    max_message_age_s: int = 600
    """Seconds after its ``Issued At`` that a SIWE message is still accepted."""
    cookie_secure: bool = True
    """Mark the session cookie ``Secure`` (only sent over HTTPS)."""
    stake_cache_ttl_s: float = 5.0
    """Seconds a chain read (stake, subnet, credit) is served from the in-process cache."""
    cache_max_entries: int = 10_000
    """Bound of each in-process chain-read cache (entries, least recently used evicted)."""
    event_poll_interval_s: float = 1.0
    """Seconds between polls of contract logs that invalidate cached chain reads."""
    tiers: tuple[RateTier, ...] = DEFAULT_TIERS
    """Stake tiers as ``name:min_stake_wei:rate_per_s:burst,...``."""
    rate_bucket_max_entries: int = 100_000
    """Bound of the number of token buckets kept in memory mode."""
    max_keys_per_owner: int = 20
    """API keys one address may hold."""
    batch_max_receipts: int = 64
    """A batch is recorded once it holds this many receipts..."""
    batch_max_age_s: float = 5.0
    """...or once its oldest receipt is this many seconds old."""
    queue_max_pending: int = 100_000
    """Unrecorded receipts the queue accepts before billed calls get 503."""
    recorder_enabled: bool = True
    """Run the background recorder (needs rpc_url and the signer)."""
    settle_interval_s: float = 300.0
    """Seconds between settlement runs; 0 disables the settlement job."""
    tx_timeout_s: float = 60.0
    """Seconds to wait for a recording transaction to be mined."""
    restaking_rpc_url: str | None = None
    """Ethereum L1 JSON-RPC through which EigenLayer restaking is read (unset: not counted)."""
    restaking_delegation_manager: str | None = None
    """EigenLayer DelegationManager on L1 (mainnet 0x39053D51B77DC0d36036Fc1fCc8Cb819df8Ef37A)."""
    restaking_strategies: str = ""
    """Comma-separated EigenLayer strategy addresses whose shares count (e.g. the stETH one)."""
    restaking_operator: str | None = None
    """Only stakers delegated to this EigenLayer operator count (unset: any operator)."""
    confirmations: int = 0
    """Blocks (its own included) before a batch counts as recorded; 0: 18 (Scroll reorgs up to 17), 1 on anvil."""
    authorization_per_address_per_hour: int = 6
    """``POST /v1/spending-authorizations`` one address may make per hour (burst of 3); the
    operator pays their gas."""
    authorization_global_per_hour: int = 120
    """Spending-authorisation submissions of all addresses together per hour; never more than
    half the signer's ``max_tx_per_hour``, so ``recordBatch`` keeps the other half."""
    recorder_interval_s: float = 0.25
    """Seconds between two recorder ticks when there is nothing to record."""
    recorder_lease_ttl_s: float = 10.0
    """Seconds the recorder lease lasts unless its holder extends it (Redis mode: one replica
    records at a time; another takes over this long after the holder stops)."""
    enable_noop_route: bool = False
    """Serve ``POST /v1/subnets/{id}/noop``: a billed, gated call without inference (tests,
    benchmarks)."""
    model_store: Path | None = None
    """Directory of model bundles (``<store>/<sha256>/``). When set, local artifact URIs must
    lie inside it and bundles fetched over HTTP(S) are kept there; when unset, any local path
    is accepted (development) and downloads go to a temporary directory."""
    model_fetch_max_bytes: int = 64 << 20
    """Most bytes downloaded for one model bundle over HTTP(S)."""
    model_fetch_timeout_s: float = 30.0
    """Seconds allowed for each HTTP(S) request fetching a bundle."""
    model_cache_max_entries: int = 8
    """Verified models (ONNX sessions) kept in memory, least recently used evicted."""
    predict_max_rows: int = 4096
    """Most rows in one ``POST /v1/subnets/{id}/predict``."""
    he_workers: int = 2
    """Worker processes evaluating CKKS requests (TenSEAL holds the GIL)."""
    he_max_queue: int = 8
    """Encrypted requests admitted beyond those running; the next gets 503 + Retry-After."""
    he_retry_after_s: float = 1.0
    """Seconds advertised in ``Retry-After`` when the evaluation pool is full."""
    proof_workers: int = 1
    """Node processes making Groth16 proofs for ``predict?proof=true`` (one thread each)."""
    proof_msm_threads: int = 1
    """Worker threads per prover process for the fixed-base multi-exponentiations (1..16; each
    holds its share of the key's tables). 2 uses both cores of a quiet 2-core machine for one proof
    (~35 MiB more peak RSS); 1 leaves the other core to the rest of the gateway."""
    proof_max_pending: int = 4
    """Proofs queued or running at once; the next ``?proof=true`` request gets 503 + Retry-After."""
    proof_timeout_s: float = 60.0
    """Seconds one proof may take before its worker is restarted and the request fails (503)."""
    proof_retry_after_s: float = 2.0
    """Seconds advertised in ``Retry-After`` when the prover queue is full or keys are being made."""
    proof_price_rows: int = 10
    """A proven row is billed as this many rows of the subnet's price (the subnet's own proof price
    needs a SubnetRegistry field; until then this documented multiple stands in for it)."""
    proof_keys_dir: Path | None = None
    """Cache of the circuit keys (``zk.default_cache_dir()`` when unset); made at start-up when
    missing, which takes minutes once per machine."""
    admin_key_file: Path | None = None
    """File (mode 0600 or 0400) holding the admin key that opens the operator's dashboard
    (``/app/operator/``, ``GET /v1/operator/overview``, header ``X-Admin-Key``) without a
    SIWE sign-in; unset: only the operator's signed-in address opens it."""
    dev_accounts: str = ""
    """Comma-separated addresses of a local chain's unlocked development accounts that the web
    page offers through a page-local wallet (``POST /v1/dev/rpc`` forwards its requests to
    :attr:`rpc_url`, where anvil signs). Only ``twopm up`` sets it; the gateway refuses to start
    with it unless both :attr:`rpc_url` and :attr:`public_url` are on loopback."""
    he_context_ttl_s: int = 3600
    """Seconds an uploaded public CKKS context is kept after its last upload."""
    he_context_max_entries: int = 256
    """Most public contexts stored at once (oldest evicted first)."""
    he_context_max_bytes: int = 256 << 20
    """Most bytes of public contexts held in memory mode (oldest evicted first)."""

    def dev_account_list(self) -> list[str]:
        """The lower-case addresses of :attr:`dev_accounts` (empty when unset).

        Raises:
            ConfigurationError: An entry is not a 20-byte hex address, or the gateway or its
                chain is not on loopback (dev accounts are for a local ``twopm up`` only).
        """
        entries = [a.strip().lower() for a in self.dev_accounts.split(",") if a.strip()]
        if not entries:
            return []
        for entry in entries:
            if len(entry) != 42 or not entry.startswith("0x"):
                raise ConfigurationError(f"dev account {entry!r} is not a 0x-hex address")
            try:
                int(entry, 16)
            except ValueError:
                raise ConfigurationError(f"dev account {entry!r} is not a 0x-hex address") from None
        for what, url in (("rpc_url", self.rpc_url), ("public_url", self.public_url)):
            host = urlsplit(url or "").hostname or ""
            if host not in _LOOPBACK_HOSTS:
                raise ConfigurationError(
                    f"dev accounts are offered only by a local gateway: {what} {url!r} is not "
                    "on loopback"
                )
        return entries

    @property
    def domain(self) -> str:
        """The SIWE domain: the authority (host[:port]) of :attr:`public_url`."""
        return urlsplit(self.public_url).netloc

    @property
    def origin(self) -> str:
        """``scheme://authority`` of :attr:`public_url`, without a trailing slash."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def contract_addresses(self) -> dict[str, str]:
        """Merge :attr:`deployment_file` and :attr:`contracts` into name -> address.

        Returns:
            Contract name -> checksummed-or-not hex address.

        Raises:
            ConfigurationError: The deployment file is missing or not JSON.
        """
        merged: dict[str, str] = {}
        if self.deployment_file is not None:
            try:
                data = json.loads(self.deployment_file.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"cannot read deployment file {self.deployment_file}: {exc}"
                ) from exc
            table = data.get("contracts") or data.get("addresses") or {}
            merged.update({str(k): str(v) for k, v in table.items()})
        merged.update(self.contracts)
        return merged

    def with_(self, **changes: Any) -> GatewaySettings:
        """Return a copy with some fields changed (tests, the CLI).

        Args:
            **changes: Field name -> new value.

        Returns:
            A new settings object.
        """
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read every field from ``TWOPM_GATEWAY_*`` variables; unset ones keep defaults.

        Args:
            environ: The environment to read; ``os.environ`` when None.

        Returns:
            The settings.

        Raises:
            ConfigurationError: A ``TWOPM_GATEWAY_*`` variable names no setting (the message
                names the closest known one, by ``difflib.get_close_matches``), or a variable
                does not parse as its field's type.
        """
        env = os.environ if environ is None else environ
        known = sorted(f.name.upper() for f in fields(cls))
        unknown = sorted(
            k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :] not in known
        )
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name[len(ENV_PREFIX) :], known, n=1, cutoff=0.8)
                hints.append(f"{name} (did you mean {ENV_PREFIX}{close[0]}?)" if close else name)
            raise ConfigurationError(
                f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(hints)};"
                " `twopm gateway settings` and docs/gateway.md list the known ones"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, str(f.type), raw)
        return cls(**values)


def _convert(name: str, type_name: str, raw: str) -> Any:
    """Convert one environment string to the field's type (named by its annotation)."""
    try:
        if name == "tiers":
            return _parse_tiers(raw)
        if name == "contracts":
            table = json.loads(raw)
            if not isinstance(table, dict):
                raise ValueError("not a JSON object")
            return {str(k): str(v) for k, v in table.items()}
        if type_name.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError("not a boolean")
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if "Path" in type_name:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise ConfigurationError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from exc
