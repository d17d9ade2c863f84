"""Sending transactions: one :class:`Transactor`, whoever signs.

The transactor takes a contract call (or raw fields, or a contract to deploy), estimates its gas,
fills EIP-1559 fees, has it signed by a :class:`SigningBackend`, broadcasts it, waits for the
receipt and replaces it with higher fees when it is stuck. Two backends exist:

- :class:`LocalKey` (here): an eth-account key in this process: the deployer on a local chain,
  test users, the demo's wallets, the SDK's wallet, a model owner publishing with their own key.
- ``signer.RemoteSigner``: the isolated signer over HTTP, holding the operator key. It assigns
  the nonces, remembers what it signed under an idempotency key (so a retry rebroadcasts the
  same bytes instead of making a second transaction) and bounds gas and fees by its policy.

What the backends differ in is told by the protocol (:attr:`SigningBackend.assigns_nonces`,
:meth:`SigningBackend.limits`, :meth:`SigningBackend.recorded`); gas estimation, the fee rules,
nonce handling, receipt polling, fee replacement and the typed errors of
:mod:`core.transactions` live once, in :class:`Transactor`.

Example::

    tx = Transactor(w3, "0x<private key>")                   # a local key
    tx = Transactor(w3, signer.RemoteSigner(client))          # the operator, through the signer
    receipt = tx.transact(ledger.functions.deposit(), value_wei=10**18)
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from contracts._artifacts import Artifact, load_artifact
from contracts._errors import ContractRevert, would_revert
from contracts.scroll import L1FeeParams, read_l1_fee_params
from core.transactions import TransactionFailed, TransactionReverted

__all__ = [
    "LOCAL_PRIORITY_FEE_WEI",
    "LocalKey",
    "SignedTransaction",
    "SigningBackend",
    "SigningLimits",
    "Transactor",
    "expect_revert",
    "replacement_key",
]

_log = logging.getLogger(__name__)

#: Priority fee of a local key unless told otherwise: 0.001 gwei (Scroll's tips are tiny; anvil
#: accepts any). The remote signer asks the node (``eth_maxPriorityFeePerGas``) instead.
LOCAL_PRIORITY_FEE_WEI = 1_000_000
#: Gas added to every estimate beside the percentage margin (a call's gas use can differ a little
#: from the simulation's, e.g. a storage slot another transaction wrote first).
GAS_HEADROOM = 10_000
#: Words of the JSON-RPC errors of geth, l2geth, reth and anvil for a transaction priced too low.
_UNDERPRICED = ("base fee", "underpriced", "fee cap", "feecap", "max fee per gas")


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction.

    Attributes:
        raw_transaction: The EIP-2718 typed transaction bytes, ready for
            ``eth_sendRawTransaction``.
        hash: Transaction hash, 0x hex.
        nonce: Its nonce.
        sender: The signing address.
        idempotency_key: The key it was signed under (None for a backend without keys).
    """

    raw_transaction: bytes
    hash: str
    nonce: int
    sender: str
    idempotency_key: str | None


@dataclass(frozen=True)
class SigningLimits:
    """What a backend's owner allows a transaction to cost (None: no bound).

    Attributes:
        max_gas_per_tx: Largest gas limit.
        max_fee_per_gas_wei: Largest ``maxFeePerGas``.
        l1_fee_ceilings: Scroll L1GasPriceOracle inputs above which nothing is signed.
    """

    max_gas_per_tx: int | None = None
    max_fee_per_gas_wei: int | None = None
    l1_fee_ceilings: L1FeeParams | None = None


class SigningBackend(Protocol):
    """Who signs for a :class:`Transactor`.

    Attributes:
        address: The signing address (EIP-55).
        assigns_nonces: True when the backend picks the nonce (the transactor sends no ``nonce``
            and calls :meth:`sync_nonce` once); False when the transactor fills it from the chain.
    """

    @property
    def address(self) -> str:
        """The signing address (EIP-55)."""
        ...

    @property
    def assigns_nonces(self) -> bool:
        """Whether the backend picks nonces itself."""
        ...

    def limits(self) -> SigningLimits:
        """The bounds on gas and fees (read once per transactor)."""
        ...

    def sync_nonce(self, confirmed_nonce: int) -> int:
        """Raise the backend's next nonce to the chain's confirmed count; return the next nonce."""
        ...

    def recorded(self, idempotency_key: str) -> SignedTransaction | None:
        """What was signed under ``idempotency_key`` before, if the backend remembers."""
        ...

    def sign(self, tx: dict[str, Any], idempotency_key: str | None) -> SignedTransaction:
        """Sign EIP-1559 fields (integers; ``nonce`` present unless :attr:`assigns_nonces`)."""
        ...

    def replace(
        self,
        current: SignedTransaction,
        max_fee_per_gas_wei: int,
        max_priority_fee_per_gas_wei: int,
        idempotency_key: str | None,
    ) -> SignedTransaction | None:
        """Re-sign ``current`` with the same nonce and these fees; None when refused."""
        ...


class LocalKey:
    """A :class:`SigningBackend` holding an eth-account key in this process.

    Args:
        private_key: The key, ``0x`` hex.
    """

    assigns_nonces = False

    def __init__(self, private_key: str) -> None:
        self.account: LocalAccount = Account.from_key(private_key)

    @property
    def address(self) -> str:
        """Checksummed address of the key."""
        return str(self.account.address)

    def limits(self) -> SigningLimits:
        """No bounds: the key's owner pays what the chain asks."""
        return SigningLimits()

    def sync_nonce(self, confirmed_nonce: int) -> int:
        """Nothing to sync: the transactor reads the nonce from the chain."""
        return confirmed_nonce

    def recorded(self, idempotency_key: str) -> SignedTransaction | None:
        """A local key keeps no record: always None."""
        del idempotency_key
        return None

    def sign(self, tx: dict[str, Any], idempotency_key: str | None) -> SignedTransaction:
        """Sign with the key (``eth_account.Account.sign_transaction``).

        Args:
            tx: EIP-1559 fields with ``nonce``.
            idempotency_key: Kept on the result only.

        Returns:
            The signed transaction.
        """
        signed = self.account.sign_transaction(tx)
        return SignedTransaction(
            raw_transaction=bytes(signed.raw_transaction),
            hash=signed.hash.to_0x_hex(),
            nonce=int(tx["nonce"]),
            sender=self.address,
            idempotency_key=idempotency_key,
        )

    def replace(
        self,
        current: SignedTransaction,
        max_fee_per_gas_wei: int,
        max_priority_fee_per_gas_wei: int,
        idempotency_key: str | None,
    ) -> SignedTransaction | None:
        """Re-sign the fields of ``current`` with new fees (same nonce).

        Returns:
            The replacement.
        """
        fields = dict(TypedTransaction.from_bytes(HexBytes(current.raw_transaction)).as_dict())
        for drop in ("v", "r", "s", "yParity", "type"):
            fields.pop(drop, None)
        fields["maxFeePerGas"] = int(max_fee_per_gas_wei)
        fields["maxPriorityFeePerGas"] = int(max_priority_fee_per_gas_wei)
        fields["type"] = 2
        return self.sign(fields, idempotency_key)


def replacement_key(key: str, attempt: int) -> str:
    """The idempotency key of the ``attempt``-th replacement of the transaction signed under ``key``.

    Returns:
        ``KEY.rN``, or ``rN.<sha256 of KEY>`` when that would pass the signer's 128-character limit.
    """
    plain = f"{key}.r{attempt}"
    if len(plain) <= 128:
        return plain
    return f"r{attempt}.{hashlib.sha256(key.encode()).hexdigest()}"


def _underpriced(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _UNDERPRICED)


def _fees(signed: SignedTransaction) -> tuple[int, int]:
    fields = TypedTransaction.from_bytes(HexBytes(signed.raw_transaction)).as_dict()
    return int(fields["maxFeePerGas"]), int(fields["maxPriorityFeePerGas"])


class Transactor:
    """Build, sign (through a :class:`SigningBackend`), broadcast and wait for transactions.

    Gas is the estimate (``eth_estimateGas``) plus ``gas_margin_pct`` percent plus
    :data:`GAS_HEADROOM`, clipped to the backend's ``max_gas_per_tx`` when the estimate fits.
    ``maxFeePerGas`` is twice the latest base fee plus the priority fee (the usual headroom for
    six full blocks of +12.5 %, EIP-1559), clipped to the backend's ``max_fee_per_gas_wei`` when
    that still covers base fee plus tip.

    A transaction still unmined ``replace_after_s`` after it was sent (or that the node calls
    underpriced) is replaced: re-signed with the same nonce and both fees raised by
    ``fee_bump_pct`` (at least the 10 % a node's pool demands), or to what the chain asks now if
    that is more, never above the backend's cap; then every version is watched until one is
    mined. With a backend that assigns nonces, the first call syncs its nonce with the chain's
    confirmed transaction count.

    Args:
        w3: A web3 instance on the chain (read and broadcast only; it holds no key).
        signer: The signing backend, or a ``0x`` hex private key (a :class:`LocalKey`).
        receipt_timeout_s: How long to wait for a receipt over all versions, seconds.
        poll_s: Receipt polling interval, seconds.
        gas_margin_pct: Percent added to the gas estimate (20 = x1.2).
        replace_after_s: Seconds without a receipt before a version is replaced.
        fee_bump_pct: Percent by which a replacement raises both fees (>= 10).
        priority_fee_wei: ``maxPriorityFeePerGas``; None asks the node
            (``eth_maxPriorityFeePerGas``). Defaults to :data:`LOCAL_PRIORITY_FEE_WEI` for a key
            given as hex, to None otherwise.

    Raises:
        ValueError: ``fee_bump_pct`` < 10 or ``replace_after_s`` <= 0.
    """

    def __init__(
        self,
        w3: Any,
        signer: SigningBackend | str,
        *,
        receipt_timeout_s: float = 120.0,
        poll_s: float = 0.2,
        gas_margin_pct: int = 20,
        replace_after_s: float = 30.0,
        fee_bump_pct: int = 15,
        priority_fee_wei: int | None = None,
    ) -> None:
        if fee_bump_pct < 10 or replace_after_s <= 0:
            raise ValueError("fee_bump_pct must be >= 10 and replace_after_s > 0")
        if isinstance(signer, str):
            signer = LocalKey(signer)
            if priority_fee_wei is None:
                priority_fee_wei = LOCAL_PRIORITY_FEE_WEI
        self.w3 = w3
        self.signer: SigningBackend = signer
        self._receipt_timeout_s = receipt_timeout_s
        self._poll_s = poll_s
        self._gas_margin_pct = gas_margin_pct
        self._replace_after_s = replace_after_s
        self._fee_bump_pct = fee_bump_pct
        self._priority_fee_wei = priority_fee_wei
        self._synced = False
        self._limits: SigningLimits | None = None

    @property
    def address(self) -> str:
        """The sending address."""
        return self.signer.address

    def sync_nonce(self) -> int:
        """Raise the backend's nonce to the sender's confirmed transaction count.

        Returns:
            The next nonce.
        """
        confirmed = int(self.w3.eth.get_transaction_count(self.address, "latest"))
        self._synced = True
        return self.signer.sync_nonce(confirmed)

    def transact(
        self,
        call: ContractFunction,
        *,
        value_wei: int = 0,
        gas: int | None = None,
        idempotency_key: str | None = None,
    ) -> TxReceipt:
        """Send one contract call and wait for it to be mined.

        Args:
            call: A bound call, e.g. ``ledger.functions.deposit()``.
            value_wei: Value to send.
            gas: Gas limit; estimated (plus the margin) when None.
            idempotency_key: Names this operation for a backend that records (the remote signer:
                calling again with the same key never sends a second transaction); a local key
                ignores it.

        Returns:
            The transaction receipt (status 1).

        Raises:
            ContractRevert: The call would revert with a known custom error (nothing signed).
            WouldRevert: It would revert otherwise (the revert data is on the error).
            TransactionReverted: Mined with status 0.
            TransactionFailed: Estimation or broadcast failed, the L1 fee inputs are above the
                backend's ceilings, or no receipt within the timeout.
            Exception: What the backend raises when it refuses (``signer.SignerRefused``, ...).
        """
        tx: dict[str, Any] = {"to": str(call.address), "data": call._encode_transaction_data()}
        return self.send(tx, value_wei=value_wei, gas=gas, idempotency_key=idempotency_key)

    def send(
        self,
        tx: dict[str, Any],
        *,
        value_wei: int | None = None,
        gas: int | None = None,
        idempotency_key: str | None = None,
    ) -> TxReceipt:
        """Fill gas, fees (and nonce) of ``tx``, sign, send and wait for the receipt.

        Args:
            tx: Transaction fields (``to``, ``data``, ``value`` ...); missing ones are filled.
            value_wei: Value to send (overrides ``tx["value"]``).
            gas: Gas limit (overrides ``tx["gas"]``); estimated when neither is given.
            idempotency_key: As for :meth:`transact`.

        Returns:
            The mined receipt (status 1).

        Raises:
            As :meth:`transact`.
        """
        if self.signer.assigns_nonces and not self._synced:
            self.sync_nonce()
        if idempotency_key is not None:
            earlier = self.signer.recorded(idempotency_key)
            if earlier is not None:
                versions = [earlier]
                while True:
                    again = self.signer.recorded(replacement_key(idempotency_key, len(versions)))
                    if again is None:
                        break
                    versions.append(again)
                return self._send_until_mined(versions)
        fields = dict(tx)
        if value_wei is not None:
            fields["value"] = value_wei
        if gas is not None:
            fields["gas"] = gas
        full = self.build_fields(fields)
        if not self.signer.assigns_nonces:
            full["nonce"] = int(self.w3.eth.get_transaction_count(self.address, "pending"))
        return self.broadcast_and_wait(self.signer.sign(full, idempotency_key))

    def build(
        self, call: ContractFunction, *, value_wei: int = 0, gas: int | None = None
    ) -> dict[str, Any]:
        """The unsigned EIP-1559 fields of a call (no nonce), within the backend's limits.

        Args:
            call: A bound web3 ``ContractFunction``.
            value_wei: Value to send.
            gas: Gas limit, or None to estimate.

        Returns:
            ``chainId``, ``to``, ``data``, ``value``, ``gas``, ``maxFeePerGas``,
            ``maxPriorityFeePerGas``.

        Raises:
            As :meth:`build_fields`.
        """
        tx: dict[str, Any] = {
            "to": str(call.address),
            "data": call._encode_transaction_data(),
            "value": value_wei,
        }
        if gas is not None:
            tx["gas"] = gas
        return self.build_fields(tx)

    def build_fields(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Complete ``tx`` (``to`` optional for a deployment, ``data``, ``value``, ``gas``).

        Returns:
            The fields with ``chainId``, ``value``, ``gas``, ``maxFeePerGas`` and
            ``maxPriorityFeePerGas`` filled (no nonce).

        Raises:
            ContractRevert: Gas estimation says the call reverts with a known custom error.
            WouldRevert: It says the call reverts otherwise (revert data on the error).
            TransactionFailed: Gas estimation failed otherwise (transport, JSON-RPC; the cause
                is chained), or the chain's L1GasPriceOracle inputs are above the backend's
                ceilings (the signer's bound on the L1 fee would not hold; try when L1 fees fall).
        """
        eth = self.w3.eth
        limits = self.limits()
        self._check_l1_fee_inputs(limits)
        data = tx.get("data", "0x")
        if not isinstance(data, str):
            data = "0x" + bytes(data).hex()
        out: dict[str, Any] = {**tx, "data": data, "value": int(tx.get("value", 0))}
        out.pop("from", None)
        if "gas" not in out:
            probe = {"from": self.address, "data": data, "value": out["value"]}
            if out.get("to") is not None:
                probe["to"] = out["to"]
            try:
                estimate = int(eth.estimate_gas(probe))
            except ContractLogicError as exc:  # ContractCustomError is a subclass
                raise would_revert(exc) from exc
            except Exception as exc:  # transport errors, JSON-RPC errors (funds, ...)
                raise TransactionFailed(f"gas estimation failed: {exc}") from exc
            gas = estimate * (100 + self._gas_margin_pct) // 100 + GAS_HEADROOM
            cap = limits.max_gas_per_tx
            if cap is not None and estimate <= cap < gas:
                gas = cap
            out["gas"] = gas
        out["gas"] = int(out["gas"])
        if "maxFeePerGas" not in out:
            base_fee = int(eth.get_block("latest").get("baseFeePerGas", 0) or 0)
            priority = self._priority_fee()
            max_fee = 2 * base_fee + priority
            fee_cap = limits.max_fee_per_gas_wei
            if fee_cap is not None and max_fee > fee_cap >= base_fee + priority:
                max_fee = fee_cap
            out["maxFeePerGas"] = max_fee
            out["maxPriorityFeePerGas"] = min(priority, max_fee)
        out.setdefault("chainId", int(eth.chain_id))
        return out

    def deploy(self, name: str | Artifact, *args: Any) -> Contract:
        """Deploy contract ``name`` from its committed artifact (or the given one) with ``args``.

        Returns:
            The deployed contract, bound to its address.

        Raises:
            ContractRevert: The constructor reverts with a known custom error.
            TransactionFailed: Deployment failed otherwise.
        """
        artifact = name if isinstance(name, Artifact) else load_artifact(name)
        name = artifact.name
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send({"data": data})
        address = receipt["contractAddress"]
        if address is None:
            raise TransactionFailed(f"deployment of {name} returned no address")
        return self.w3.eth.contract(address=address, abi=artifact.abi)

    def broadcast_and_wait(self, signed: SignedTransaction) -> TxReceipt:
        """Broadcast signed bytes (idempotently) and wait for the receipt, replacing when stuck.

        Args:
            signed: The signed transaction.

        Returns:
            The receipt (status 1) of whichever version was mined.

        Raises:
            TransactionReverted: Mined with status 0.
            TransactionFailed: Rejected by the node, or no receipt within the timeout.
        """
        return self._send_until_mined([signed])

    def limits(self) -> SigningLimits:
        """The backend's limits, read once."""
        if self._limits is None:
            self._limits = self.signer.limits()
        return self._limits

    def _priority_fee(self) -> int:
        if self._priority_fee_wei is not None:
            return self._priority_fee_wei
        return int(self.w3.eth.max_priority_fee)

    def _send_until_mined(self, versions: list[SignedTransaction]) -> TxReceipt:
        eth = self.w3.eth
        latest = versions[-1]
        started = time.monotonic()
        replace_at = started + self._replace_after_s
        try:
            eth.send_raw_transaction(latest.raw_transaction)
        except Exception as exc:  # the node's JSON-RPC error for a known/mined tx varies
            if _underpriced(exc):
                replace_at = started  # priced under the base fee now: replace at once
            elif len(versions) == 1 and not self._known(latest.hash):
                raise TransactionFailed(
                    f"broadcast of nonce {latest.nonce} failed: {exc}", latest.hash
                ) from exc
        while True:
            for version in reversed(versions):
                receipt = self._receipt(version.hash)
                if receipt is not None:
                    if int(receipt["status"]) != 1:
                        raise TransactionReverted(
                            f"transaction {version.hash} reverted", version.hash, receipt
                        )
                    return receipt
            now = time.monotonic()
            if now - started >= self._receipt_timeout_s:
                raise TransactionFailed(
                    f"no receipt for nonce {latest.nonce} ({len(versions)} version(s), last "
                    f"{versions[-1].hash}) within {self._receipt_timeout_s} s",
                    versions[-1].hash,
                )
            if now >= replace_at:
                replace_at = now + self._replace_after_s
                replacement = self._replace(versions, len(versions))
                if replacement is not None:
                    versions.append(replacement)
                    try:
                        eth.send_raw_transaction(replacement.raw_transaction)
                    except Exception as exc:  # an earlier version mined meanwhile, ...
                        _log.warning("broadcast of replacement %s: %s", replacement.hash, exc)
            time.sleep(self._poll_s)

    def _replace(self, versions: list[SignedTransaction], attempt: int) -> SignedTransaction | None:
        """Have the latest version re-signed with raised fees; None when there is no room or need."""
        eth = self.w3.eth
        current = versions[-1]
        if int(eth.get_transaction_count(current.sender, "latest")) > current.nonce:
            return None  # the nonce is used: a version was mined, its receipt is on its way
        old_max, old_priority = _fees(current)
        bump = 100 + self._fee_bump_pct
        base_fee = self._next_base_fee()
        priority = max(-(-old_priority * bump // 100), self._priority_fee())
        max_fee = max(-(-old_max * bump // 100), 2 * base_fee + priority)
        cap = self.limits().max_fee_per_gas_wei
        if cap is not None:
            max_fee = min(max_fee, cap)
        priority = min(priority, max_fee)
        if max_fee * 100 < old_max * 110 or priority * 100 < old_priority * 110:
            _log.warning(
                "nonce %d stuck at maxFeePerGas %d: the cap of %s wei leaves no room "
                "for a 10 %% raise",
                current.nonce,
                old_max,
                cap,
            )
            return None
        first = versions[0].idempotency_key
        key = None if first is None else replacement_key(first, attempt)
        return self.signer.replace(current, max_fee, priority, key)

    def _next_base_fee(self) -> int:
        """The next block's base fee (``eth_feeHistory``'s last entry, EIP-1559), or the latest's."""
        eth = self.w3.eth
        latest = int(eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        try:
            history = eth.fee_history(1, "latest")
            return max(latest, int(history["baseFeePerGas"][-1]))
        except Exception:  # a node without eth_feeHistory
            return latest

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except Exception:  # TransactionNotFound while pending, or a transport error: poll again
            return None

    def _known(self, tx_hash: str) -> bool:
        try:
            return self.w3.eth.get_transaction(tx_hash) is not None
        except Exception:  # TransactionNotFound
            return False

    def _check_l1_fee_inputs(self, limits: SigningLimits) -> None:
        ceilings = limits.l1_fee_ceilings
        if ceilings is None:
            return
        current = read_l1_fee_params(self.w3)
        if current is not None and not ceilings.dominates(current):
            raise TransactionFailed(
                f"the chain's L1 fee inputs {current} are above the signer policy's [l1_fee] "
                f"ceilings {ceilings}: not signing until L1 fees fall"
            )


def expect_revert(call: ContractFunction, sender: str, *, value: int = 0) -> ContractRevert:
    """Simulate ``call`` from ``sender`` and return the custom error it reverts with.

    Raises:
        AssertionError: The call does not revert, or reverts without a known custom error.
    """
    try:
        call.call({"from": Web3.to_checksum_address(sender), "value": value})  # type: ignore[arg-type]
    except ContractLogicError as exc:  # ContractCustomError is a subclass
        decoded = would_revert(exc)
        if isinstance(decoded, ContractRevert):
            return decoded
        raise AssertionError(f"reverted without a known custom error: {exc}") from exc
    raise AssertionError("call did not revert")
