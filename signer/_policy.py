"""The signing policy: what the signer may sign, loaded from TOML once at start.

File format (every wei amount may be a TOML integer or a decimal string, since TOML integers
stop at 2**63 - 1)::

    chain_id = 534351

    [limits]
    max_value_per_tx_wei = "0"               # value carried by one transaction
    max_value_per_window_wei = "0"           # total value signed over the rolling window
    value_window_s = 86400                   # the rolling window, seconds
    max_gas_per_tx = 3000000                 # gas limit of one transaction
    max_fee_per_gas_wei = "200000000000"     # EIP-1559 maxFeePerGas (and so the priority fee)
    max_tx_per_hour = 600                    # signed transactions over the last 3600 s
    max_typed_data_per_hour = 600            # signed EIP-712 messages over the last 3600 s

    [l1_fee]                                 # optional, for Scroll: cap the fee including the L1 data fee
    max_total_fee_per_tx_wei = "100000000000000000"  # gas x maxFeePerGas + the L1 fee bound
    l1_base_fee_wei = "20000000000"          # the highest L1GasPriceOracle inputs the bound assumes
    l1_blob_base_fee_wei = "20000000000"
    commit_scalar = "500000000"
    blob_scalar = "500000000"
    penalty_factor = 10000                   # the lowest penalty factor assumed

    [[contracts]]
    name = "InferenceLedger"                 # informative
    address = "0x..."
    functions = [
        "recordBatch(uint256,bytes32,address[],uint256[],uint32)",
        "settle(uint256,uint64)",
    ]

    [[typed_data]]                           # EIP-712 domains that may be signed
    name = "2PM InferenceLedger"
    version = "1"
    chain_id = 534351
    verifying_contract = "0x..."
    primary_types = ["SpendingCap"]

Functions are human signatures; each becomes a 4-byte selector (the first four bytes of the
Keccak-256 of the canonical signature, Solidity ABI spec "Function Selector") checked against
the calldata, and the rest of the calldata must ABI-decode with the signature's argument types.

With ``[l1_fee]``, every signed transaction must satisfy ``gas x maxFeePerGas + L1 fee <= cap``, where
the L1 fee is Scroll's Galileo formula (:mod:`contracts.scroll`) of the signed bytes at the ceilings given:
the signer has no chain access, so the cap holds while the chain's ``L1GasPriceOracle`` inputs stay at or
below them; the chain connector (``contracts.Transactor`` with ``signer.RemoteSigner``) checks that before it broadcasts.

The :attr:`Policy.digest` is the SHA-256 of the canonical JSON of the parsed policy (sorted
keys, checksummed addresses, canonical signatures), so comments and layout do not change it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_abi.grammar import normalize as abi_normalize
from eth_abi.grammar import parse as abi_parse
from eth_utils import is_address, keccak, to_checksum_address

from signer._errors import ConfigError, MalformedRequest, PolicyViolation

if TYPE_CHECKING:
    from contracts.scroll import L1FeeParams

_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class AllowedFunction:
    """One allowed function of a contract.

    Attributes:
        signature: Canonical signature, for example ``settle(uint256,uint64)``.
        selector: Its 4-byte selector.
        arg_types: Its canonical ABI argument types.
    """

    signature: str
    selector: bytes
    arg_types: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> AllowedFunction:
        """Parse a human function signature.

        Args:
            text: ``name(type,type,...)``; ``uint`` and ``int`` are normalised to 256 bits,
                tuples are written ``(type,type)``.

        Returns:
            The function with its selector.

        Raises:
            ConfigError: The text is not a valid signature.
        """
        text = text.replace(" ", "")
        open_at = text.find("(")
        if open_at <= 0 or not text.endswith(")") or not _NAME.match(text[:open_at]):
            raise ConfigError(f"not a function signature: {text!r}")
        inner = text[open_at + 1 : -1]
        types = tuple(_split_types(inner)) if inner else ()
        canonical_types = []
        for t in types:
            try:
                normal = abi_normalize(t)
                abi_parse(normal).validate()
            except Exception as exc:  # eth_abi raises several parse/validation error types
                raise ConfigError(f"bad type {t!r} in {text!r}: {exc}") from exc
            canonical_types.append(normal)
        signature = f"{text[:open_at]}({','.join(canonical_types)})"
        return cls(signature, keccak(text=signature)[:4], tuple(canonical_types))


@dataclass(frozen=True)
class AllowedContract:
    """A destination contract and its allowed functions.

    Attributes:
        name: A label for people (not checked).
        address: Checksummed address.
        functions: Allowed functions by selector.
    """

    name: str
    address: str
    functions: Mapping[bytes, AllowedFunction]


@dataclass(frozen=True)
class TypedDataDomain:
    """An EIP-712 domain the signer may sign for, with its allowed primary types.

    Attributes:
        name: Domain ``name``.
        version: Domain ``version``.
        chain_id: Domain ``chainId``; must equal the policy's chain id.
        verifying_contract: Domain ``verifyingContract``, checksummed.
        primary_types: Allowed ``primaryType`` values.
    """

    name: str
    version: str
    chain_id: int
    verifying_contract: str
    primary_types: frozenset[str]


@dataclass(frozen=True)
class Limits:
    """Caps on what is signed. All amounts in wei; 0 forbids any value.

    Attributes:
        max_value_per_tx_wei: Value of one transaction.
        max_value_per_window_wei: Total value over :attr:`value_window_s`.
        value_window_s: The rolling window for value, seconds.
        max_gas_per_tx: Gas limit of one transaction.
        max_fee_per_gas_wei: ``maxFeePerGas`` (the priority fee may not exceed it either).
        max_tx_per_hour: Signed transactions over the last 3600 s.
        max_typed_data_per_hour: Signed EIP-712 messages over the last 3600 s.
    """

    max_value_per_tx_wei: int = 0
    max_value_per_window_wei: int = 0
    value_window_s: int = 86_400
    max_gas_per_tx: int = 3_000_000
    max_fee_per_gas_wei: int = 200 * 10**9
    max_tx_per_hour: int = 600
    max_typed_data_per_hour: int = 600


@dataclass(frozen=True)
class L1FeeCap:
    """The cap on a transaction's whole fee on Scroll, L2 plus L1 data fee (the ``[l1_fee]`` table).

    Attributes:
        max_total_fee_per_tx_wei: Most that ``gas x maxFeePerGas`` plus the L1 fee bound may reach.
        ceilings: The highest ``L1GasPriceOracle`` inputs the bound assumes (for ``penalty_factor``, the
            lowest).
    """

    max_total_fee_per_tx_wei: int
    ceilings: L1FeeParams

    def bound_wei(self, raw_tx: bytes) -> int:
        """The L1 fee of the signed transaction ``raw_tx`` at the ceilings, in wei (Galileo formula)."""
        from contracts.scroll import l1_fee_wei  # only with [l1_fee]: plain policies load no web3

        return l1_fee_wei(raw_tx, self.ceilings)

    def canonical(self) -> dict[str, Any]:
        """The table as plain JSON data (amounts as decimal strings)."""
        c = self.ceilings
        return {
            "max_total_fee_per_tx_wei": str(self.max_total_fee_per_tx_wei),
            "l1_base_fee_wei": str(c.l1_base_fee_wei),
            "l1_blob_base_fee_wei": str(c.l1_blob_base_fee_wei),
            "commit_scalar": str(c.commit_scalar),
            "blob_scalar": str(c.blob_scalar),
            "penalty_factor": c.penalty_factor,
        }

    def toml_lines(self) -> list[str]:
        """The ``[l1_fee]`` table as TOML lines."""
        lines = ["", "[l1_fee]"]
        for name, value in self.canonical().items():
            lines.append(f'{name} = "{value}"' if isinstance(value, str) else f"{name} = {value}")
        return lines


@dataclass(frozen=True)
class TxRequest:
    """An EIP-1559 transaction to sign, without its nonce (the signer assigns it).

    Attributes:
        chain_id: EIP-155 chain id.
        to: Destination (checksummed).
        data: Calldata.
        value_wei: Value sent.
        gas: Gas limit.
        max_fee_per_gas_wei: EIP-1559 ``maxFeePerGas``.
        max_priority_fee_per_gas_wei: EIP-1559 ``maxPriorityFeePerGas``.
    """

    chain_id: int
    to: str
    data: bytes
    value_wei: int
    gas: int
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int

    def to_eth_account(self, nonce: int) -> dict[str, Any]:
        """The dict eth-account's ``sign_transaction`` takes.

        Args:
            nonce: The nonce the signer assigned.

        Returns:
            A typed (type 2) transaction dict.
        """
        return {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": self.to,
            "value": self.value_wei,
            "data": "0x" + self.data.hex(),
            "gas": self.gas,
            "maxFeePerGas": self.max_fee_per_gas_wei,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas_wei,
            "accessList": [],
        }


@dataclass(frozen=True)
class Policy:
    """A loaded policy. Build it with :func:`load_policy` or :func:`parse_policy`.

    Attributes:
        chain_id: The one chain id signed for.
        contracts: Allowed destinations by checksummed address.
        limits: The caps.
        typed_data: Allowed EIP-712 domains.
        l1_fee: The cap on the fee including Scroll's L1 data fee, or None (not checked).
    """

    chain_id: int
    contracts: Mapping[str, AllowedContract]
    limits: Limits
    typed_data: tuple[TypedDataDomain, ...]
    l1_fee: L1FeeCap | None = None

    def canonical(self) -> dict[str, Any]:
        """The policy as plain JSON data (wei amounts as decimal strings).

        Returns:
            A dict whose sorted-key JSON is what :attr:`digest` hashes.
        """
        lim = self.limits
        extra = {} if self.l1_fee is None else {"l1_fee": self.l1_fee.canonical()}
        return {
            **extra,
            "chain_id": self.chain_id,
            "limits": {
                "max_value_per_tx_wei": str(lim.max_value_per_tx_wei),
                "max_value_per_window_wei": str(lim.max_value_per_window_wei),
                "value_window_s": lim.value_window_s,
                "max_gas_per_tx": lim.max_gas_per_tx,
                "max_fee_per_gas_wei": str(lim.max_fee_per_gas_wei),
                "max_tx_per_hour": lim.max_tx_per_hour,
                "max_typed_data_per_hour": lim.max_typed_data_per_hour,
            },
            "contracts": [
                {
                    "name": c.name,
                    "address": c.address,
                    "functions": sorted(f.signature for f in c.functions.values()),
                }
                for c in sorted(self.contracts.values(), key=lambda c: c.address.lower())
            ],
            "typed_data": [
                {
                    "name": d.name,
                    "version": d.version,
                    "chain_id": d.chain_id,
                    "verifying_contract": d.verifying_contract,
                    "primary_types": sorted(d.primary_types),
                }
                for d in sorted(
                    self.typed_data, key=lambda d: (d.verifying_contract.lower(), d.name)
                )
            ],
        }

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON (sorted keys, no spaces)."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def check_transaction(self, tx: TxRequest) -> AllowedFunction:
        """Check the per-transaction rules (the rolling-window caps are checked by the store).

        Args:
            tx: The request.

        Returns:
            The allowed function the calldata calls.

        Raises:
            PolicyViolation: With reason ``wrong_chain``, ``unknown_contract``,
                ``unknown_function``, ``value_over_cap``, ``gas_over_cap`` or ``fee_over_cap``.
            MalformedRequest: The calldata does not decode (``malformed_calldata``).
        """
        lim = self.limits
        if tx.chain_id != self.chain_id:
            raise PolicyViolation(
                "wrong_chain", f"chain id {tx.chain_id} is not the policy's {self.chain_id}"
            )
        contract = self.contracts.get(tx.to)
        if contract is None:
            raise PolicyViolation("unknown_contract", f"{tx.to} is not an allowed contract")
        function = contract.functions.get(tx.data[:4])
        if function is None:
            raise PolicyViolation(
                "unknown_function",
                f"selector 0x{tx.data[:4].hex()} is not an allowed function of {contract.name}",
            )
        try:
            abi_decode(list(function.arg_types), tx.data[4:], strict=True)
        except (DecodingError, ValueError, OverflowError) as exc:
            raise MalformedRequest(
                "malformed_calldata", f"calldata does not decode as {function.signature}"
            ) from exc
        if tx.value_wei > lim.max_value_per_tx_wei:
            raise PolicyViolation(
                "value_over_cap",
                f"value {tx.value_wei} wei is over the cap of {lim.max_value_per_tx_wei} wei",
            )
        if tx.gas > lim.max_gas_per_tx:
            raise PolicyViolation(
                "gas_over_cap", f"gas {tx.gas} is over the cap of {lim.max_gas_per_tx}"
            )
        if tx.max_fee_per_gas_wei > lim.max_fee_per_gas_wei:
            raise PolicyViolation(
                "fee_over_cap",
                f"maxFeePerGas {tx.max_fee_per_gas_wei} wei is over the cap of "
                f"{lim.max_fee_per_gas_wei} wei",
            )
        if tx.max_priority_fee_per_gas_wei > tx.max_fee_per_gas_wei:
            raise PolicyViolation(
                "fee_over_cap", "maxPriorityFeePerGas is over maxFeePerGas (EIP-1559)"
            )
        return function

    def check_total_fee(self, tx: TxRequest, raw_tx: bytes) -> int | None:
        """Check the whole fee of the signed ``raw_tx`` against ``[l1_fee]``.

        Args:
            tx: The request (its gas and maxFeePerGas give the L2 part).
            raw_tx: The same transaction, signed (its compressed size gives the L1 part).

        Returns:
            The L1 fee bound in wei, or None when the policy has no ``[l1_fee]``.

        Raises:
            PolicyViolation: ``total_fee_over_cap``.
        """
        if self.l1_fee is None:
            return None
        bound = self.l1_fee.bound_wei(raw_tx)
        total = tx.gas * tx.max_fee_per_gas_wei + bound
        if total > self.l1_fee.max_total_fee_per_tx_wei:
            raise PolicyViolation(
                "total_fee_over_cap",
                f"gas x maxFeePerGas + L1 fee bound = {total} wei is over the cap of "
                f"{self.l1_fee.max_total_fee_per_tx_wei} wei",
            )
        return bound

    def check_typed_data(self, domain: Mapping[str, Any], primary_type: str) -> TypedDataDomain:
        """Check an EIP-712 domain and primary type against the allowed domains.

        Args:
            domain: The message's ``domain`` object.
            primary_type: Its ``primaryType``.

        Returns:
            The matching allowed domain.

        Raises:
            PolicyViolation: With reason ``wrong_chain``, ``typed_data_domain_not_allowed`` or
                ``typed_data_type_not_allowed``.
        """
        chain_id = domain.get("chainId")
        if chain_id is not None and _as_int(chain_id) != self.chain_id:
            raise PolicyViolation(
                "wrong_chain", f"domain chainId {chain_id} is not the policy's {self.chain_id}"
            )
        contract = domain.get("verifyingContract")
        for allowed in self.typed_data:
            if (
                domain.get("name") == allowed.name
                and domain.get("version") == allowed.version
                and chain_id is not None
                and isinstance(contract, str)
                and contract.lower() == allowed.verifying_contract.lower()
                and not set(domain) - {"name", "version", "chainId", "verifyingContract"}
            ):
                if primary_type not in allowed.primary_types:
                    raise PolicyViolation(
                        "typed_data_type_not_allowed",
                        f"primary type {primary_type!r} is not allowed for domain {allowed.name!r}",
                    )
                return allowed
        raise PolicyViolation(
            "typed_data_domain_not_allowed", "the EIP-712 domain is not an allowed domain"
        )


def load_policy(path: Path) -> Policy:
    """Read and check a policy file.

    Args:
        path: The TOML file.

    Returns:
        The policy.

    Raises:
        ConfigError: The file cannot be read or is not a valid policy.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy {path}: {exc.strerror}") from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Parse policy TOML.

    Args:
        text: The TOML text.
        source: Name used in error messages.

    Returns:
        The policy.

    Raises:
        ConfigError: Invalid TOML, unknown keys, or invalid values.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    _only_keys(raw, {"chain_id", "limits", "contracts", "typed_data", "l1_fee"}, source)
    chain_id = _positive_int(raw.get("chain_id"), f"{source}: chain_id")
    lim_raw = raw.get("limits", {})
    if not isinstance(lim_raw, dict):
        raise ConfigError(f"{source}: [limits] must be a table")
    _only_keys(lim_raw, set(Limits.__dataclass_fields__), f"{source} [limits]")
    defaults = Limits()
    limits = Limits(
        **{
            name: _nonneg_int(lim_raw.get(name, getattr(defaults, name)), f"{source}: {name}")
            for name in Limits.__dataclass_fields__
        }
    )
    if limits.value_window_s <= 0:
        raise ConfigError(f"{source}: value_window_s must be positive")
    contracts: dict[str, AllowedContract] = {}
    for i, entry in enumerate(_table_list(raw.get("contracts", []), f"{source}: contracts")):
        where = f"{source}: contracts[{i}]"
        _only_keys(entry, {"name", "address", "functions"}, where)
        address = _address(entry.get("address"), where)
        if address in contracts:
            raise ConfigError(f"{where}: {address} is listed twice")
        names = entry.get("functions")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}: functions must be a non-empty list of signatures")
        functions: dict[bytes, AllowedFunction] = {}
        for name in names:
            fn = AllowedFunction.parse(name)
            if fn.selector in functions and functions[fn.selector].signature != fn.signature:
                raise ConfigError(f"{where}: selector clash between {fn.signature} and another")
            functions[fn.selector] = fn
        label = entry.get("name", address)
        contracts[address] = AllowedContract(str(label), address, functions)
    domains = []
    for i, entry in enumerate(_table_list(raw.get("typed_data", []), f"{source}: typed_data")):
        where = f"{source}: typed_data[{i}]"
        _only_keys(
            entry, {"name", "version", "chain_id", "verifying_contract", "primary_types"}, where
        )
        types = entry.get("primary_types")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise ConfigError(f"{where}: primary_types must be a non-empty list of names")
        domain_chain = _positive_int(entry.get("chain_id", chain_id), f"{where}: chain_id")
        if domain_chain != chain_id:
            raise ConfigError(f"{where}: chain_id {domain_chain} is not the policy's {chain_id}")
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise ConfigError(f"{where}: name and version must be strings")
        domains.append(
            TypedDataDomain(
                name,
                version,
                domain_chain,
                _address(entry.get("verifying_contract"), where),
                frozenset(types),
            )
        )
    return Policy(chain_id, contracts, limits, tuple(domains), _l1_fee(raw, source))


_L1_FEE_KEYS = (
    "max_total_fee_per_tx_wei",
    "l1_base_fee_wei",
    "l1_blob_base_fee_wei",
    "commit_scalar",
    "blob_scalar",
    "penalty_factor",
)


def _l1_fee(raw: Mapping[str, Any], source: str) -> L1FeeCap | None:
    table = raw.get("l1_fee")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [l1_fee] must be a table")
    _only_keys(table, set(_L1_FEE_KEYS), f"{source} [l1_fee]")
    missing = [k for k in _L1_FEE_KEYS if k not in table]
    if missing:
        raise ConfigError(f"{source}: [l1_fee] needs {', '.join(missing)}")
    v = {k: _nonneg_int(table[k], f"{source}: l1_fee.{k}") for k in _L1_FEE_KEYS}
    if v["penalty_factor"] == 0:
        raise ConfigError(f"{source}: l1_fee.penalty_factor must be positive")
    from contracts.scroll import L1FeeParams  # only with [l1_fee]: plain policies load no web3

    return L1FeeCap(
        v["max_total_fee_per_tx_wei"],
        L1FeeParams(
            l1_base_fee_wei=v["l1_base_fee_wei"],
            l1_blob_base_fee_wei=v["l1_blob_base_fee_wei"],
            commit_scalar=v["commit_scalar"],
            blob_scalar=v["blob_scalar"],
            penalty_factor=v["penalty_factor"],
        ),
    )


def _split_types(inner: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unbalanced parentheses in {inner!r}")
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    if depth:
        raise ConfigError(f"unbalanced parentheses in {inner!r}")
    parts.append(inner[start:])
    if any(not p for p in parts):
        raise ConfigError(f"empty type in {inner!r}")
    return parts


def _only_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = set(table) - allowed
    if extra:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(extra))}")


def _table_list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where} must be an array of tables ([[...]])")
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("bool is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 0) if value.startswith("0x") else int(value)
    raise ValueError(f"not an integer: {value!r}")


def _nonneg_int(value: Any, where: str) -> int:
    try:
        number = _as_int(value)
    except ValueError as exc:
        raise ConfigError(f"{where} must be an integer or a decimal string") from exc
    if number < 0:
        raise ConfigError(f"{where} must not be negative")
    return number


def _positive_int(value: Any, where: str) -> int:
    number = _nonneg_int(value, where)
    if number == 0:
        raise ConfigError(f"{where} must be positive")
    return number


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"{where}: {value!r} is not an address")
    return str(to_checksum_address(value))
