"""The caller library: talk to the signer, and send contract calls through it.

Used by the gateway's recorder, the settlement job and ``twopm publish`` (``clients`` never
imports it). Two layers:

- :class:`SignerClient`: one method per API route over httpx, each request signed with the
  caller's secret (:func:`signer._auth.sign_request`), transient failures retried with the same
  idempotency key, problem bodies translated into :class:`~signer._errors.SignerRefused`.
- :class:`Transactor`: takes a web3 contract function call, estimates gas, fills EIP-1559
  fees within the signer's policy caps, has it signed, broadcasts it, and waits for the
  receipt. A retry with the same idempotency key (even from a restarted process) gets the same
  signed bytes, so it rebroadcasts the same transaction instead of making a second one.

Example::

    client = SignerClient("http://127.0.0.1:8547", "recorder", secret)
    tx = Transactor(w3, client)
    receipt = tx.transact(ledger.functions.recordBatch(...), idempotency_key=f"batch-{batch_id}")
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

from core.transactions import TransactionFailed, TransactionReverted, WouldRevert, revert_data_of
from signer._auth import sign_request
from signer._errors import ClientError, SignerRefused, SignerUnavailable

if TYPE_CHECKING:
    from contracts.scroll import L1FeeParams


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction signed by the signer.

    Attributes:
        raw_transaction: The EIP-2718 typed transaction bytes, ready for
            ``eth_sendRawTransaction``.
        hash: Transaction hash, 0x hex.
        nonce: The nonce the signer assigned.
        sender: The operator address.
        idempotency_key: The key it was signed under.
    """

    raw_transaction: bytes
    hash: str
    nonce: int
    sender: str
    idempotency_key: str

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> SignedTransaction:
        """Build from the signer's JSON answer.

        Args:
            body: The response of ``POST /v1/sign/transaction`` or ``GET /v1/records/{key}``.

        Returns:
            The signed transaction.
        """
        return cls(
            raw_transaction=bytes.fromhex(str(body["raw_transaction"])[2:]),
            hash=str(body["hash"]),
            nonce=int(body["nonce"]),
            sender=str(body["from"]),
            idempotency_key=str(body["idempotency_key"]),
        )


@dataclass(frozen=True)
class SignedTypedData:
    """An EIP-712 signature by the signer.

    Attributes:
        signature: 65 bytes r || s || v.
        hash: The EIP-712 digest that was signed, 0x hex.
        sender: The operator address.
    """

    signature: bytes
    hash: str
    sender: str


class SignerClient:
    """HTTP client of the signer API.

    Args:
        url: ``http://127.0.0.1:PORT`` or ``unix:/path/to/socket``.
        caller: The caller id given to ``twopm signer callers add``.
        secret: The caller's secret (bytes or hex text).
        timeout_s: Per-request timeout, seconds.
        attempts: How many times a request is sent when the signer is unreachable or answers
            5xx (signing requests are safe to repeat: same idempotency key, same answer).
        backoff_s: Sleep before the second attempt, doubled after each.
        transport: An httpx transport to use instead of the network (tests of callers).
    """

    def __init__(
        self,
        url: str,
        caller: str,
        secret: bytes | str,
        *,
        timeout_s: float = 10.0,
        attempts: int = 5,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._secret = bytes.fromhex(secret) if isinstance(secret, str) else secret
        self._caller = caller
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        if url.startswith("unix:"):
            transport = transport or httpx.HTTPTransport(uds=url[len("unix:") :])
            base_url = "http://signer"
        else:
            base_url = url.rstrip("/")
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
        self._address: str | None = None

    @classmethod
    def from_secret_file(
        cls, url: str, caller: str, secret_file: Path, **kwargs: Any
    ) -> SignerClient:
        """A client whose secret is read from a file (hex, as ``--secret-out`` writes it).

        Args:
            url: Signer URL.
            caller: Caller id.
            secret_file: File holding the hex secret.
            **kwargs: Passed to the constructor.

        Returns:
            The client.

        Raises:
            ClientError: The file cannot be read, has group or other permission bits (it must
                be 0600, as the signer's own secret files), or is not hex.
        """
        try:
            mode = secret_file.stat().st_mode
        except OSError as exc:
            raise ClientError(f"cannot read {secret_file}: {exc.strerror}") from exc
        if mode & 0o077:
            raise ClientError(
                f"{secret_file} has mode {mode & 0o777:04o}, readable by others;"
                f" run: chmod 600 {secret_file}"
            )
        try:
            secret = bytes.fromhex(secret_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read a hex caller secret from {secret_file}") from exc
        return cls(url, caller, secret, **kwargs)

    def __enter__(self) -> SignerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- routes ------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (no authentication).

        Returns:
            ``{"status": "ok", "address", "policy_digest"}``.

        Raises:
            SignerUnavailable: The signer is not answering.
        """
        try:
            response = self._http.get("/healthz")
        except httpx.HTTPError as exc:
            raise SignerUnavailable(f"signer not reachable: {type(exc).__name__}") from exc
        return self._decode(response)

    def address(self) -> str:
        """The operator address (cached after the first call).

        Returns:
            Checksummed address.
        """
        if self._address is None:
            self._address = str(self._request("GET", "/v1/address")["address"])
        return self._address

    def policy(self) -> dict[str, Any]:
        """The signer's policy and digest.

        Returns:
            ``{"digest", "chain_id", "policy"}`` (see :meth:`signer.Policy.canonical`).
        """
        return self._request("GET", "/v1/policy")

    def next_nonce(self) -> int:
        """The nonce the signer will give the next transaction.

        Returns:
            The nonce.
        """
        return int(self._request("GET", "/v1/nonce")["next_nonce"])

    def sync_nonce(self, confirmed_nonce: int) -> int:
        """Raise the signer's nonce to the chain's confirmed one (it is never lowered).

        Args:
            confirmed_nonce: ``eth_getTransactionCount(operator, "latest")``.

        Returns:
            The signer's next nonce afterwards.
        """
        body = {"confirmed_nonce": int(confirmed_nonce)}
        return int(self._request("POST", "/v1/nonce/sync", body)["next_nonce"])

    def sign_transaction(
        self, transaction: Mapping[str, Any], idempotency_key: str
    ) -> SignedTransaction:
        """Have an EIP-1559 transaction signed; the signer assigns the nonce.

        Args:
            transaction: ``chainId``, ``to``, ``data``, ``value``, ``gas``, ``maxFeePerGas``,
                ``maxPriorityFeePerGas`` (integers, wei and gas units); no ``nonce``.
            idempotency_key: 8-128 characters ``[A-Za-z0-9_.:-]``; the same key and body give
                the same signed bytes, the same key and another body a 409.

        Returns:
            The signed transaction.

        Raises:
            SignerRefused: The policy or the request was refused (``reason`` says why).
            SignerUnavailable: No answer after every attempt.
        """
        body = {"idempotency_key": idempotency_key, "transaction": _jsonable_tx(transaction)}
        return SignedTransaction.from_response(self._request("POST", "/v1/sign/transaction", body))

    def replace_transaction(
        self,
        replaces: str,
        max_fee_per_gas_wei: int,
        max_priority_fee_per_gas_wei: int,
        idempotency_key: str,
    ) -> SignedTransaction:
        """Have a transaction of ours re-signed with the same nonce and higher fees.

        Args:
            replaces: Idempotency key of the transaction to replace (the latest version).
            max_fee_per_gas_wei: New ``maxFeePerGas``, at least 10 % above the replaced one's.
            max_priority_fee_per_gas_wei: New ``maxPriorityFeePerGas``, at least 10 % above.
            idempotency_key: Key of the replacement.

        Returns:
            The replacement (same nonce).

        Raises:
            SignerRefused: ``replacement_underpriced``, a cap of the policy, ``not_found``, ...
            SignerUnavailable: No answer after every attempt.
        """
        body = {
            "idempotency_key": idempotency_key,
            "replaces": replaces,
            "maxFeePerGas": str(int(max_fee_per_gas_wei)),
            "maxPriorityFeePerGas": str(int(max_priority_fee_per_gas_wei)),
        }
        return SignedTransaction.from_response(self._request("POST", "/v1/sign/replacement", body))

    def sign_typed_data(
        self, typed_data: Mapping[str, Any], idempotency_key: str
    ) -> SignedTypedData:
        """Have EIP-712 typed data signed.

        Args:
            typed_data: ``{"types", "primaryType", "domain", "message"}``.
            idempotency_key: As for :meth:`sign_transaction`.

        Returns:
            The signature.
        """
        body = {"idempotency_key": idempotency_key, "typed_data": dict(typed_data)}
        answer = self._request("POST", "/v1/sign/typed-data", body)
        return SignedTypedData(
            bytes.fromhex(str(answer["signature"])[2:]), str(answer["hash"]), str(answer["from"])
        )

    def record(self, idempotency_key: str) -> dict[str, Any] | None:
        """What was signed under a key of this caller, if anything.

        Args:
            idempotency_key: The key.

        Returns:
            The stored answer (with ``kind``), or None.
        """
        try:
            return self._request("GET", f"/v1/records/{idempotency_key}")
        except SignerRefused as exc:
            if exc.status == 404:
                return None
            raise

    # -- transport -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        delay = self._backoff_s
        last: Exception | None = None
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(delay)
                delay *= 2
            headers = sign_request(self._secret, self._caller, method, path, raw)
            if raw:
                headers["Content-Type"] = "application/json"
            try:
                response = self._http.request(method, path, content=raw, headers=headers)
            except httpx.HTTPError as exc:
                last = SignerUnavailable(f"signer not reachable: {type(exc).__name__}: {exc}")
                continue
            if response.status_code >= 500:
                last = SignerUnavailable(f"signer answered {response.status_code}")
                continue
            return self._decode(response)
        assert last is not None
        raise last

    @staticmethod
    def _decode(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            problem = body if isinstance(body, dict) else {}
            raise SignerRefused(
                response.status_code,
                str(problem.get("reason", "unknown")),
                str(problem.get("detail", response.reason_phrase)),
                problem,
            )
        if response.status_code >= 500 or not isinstance(body, dict):
            raise SignerUnavailable(f"unexpected answer from the signer ({response.status_code})")
        return body


def _jsonable_tx(tx: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if isinstance(value, bytes | bytearray) or (
            hasattr(value, "hex") and not isinstance(value, int | str)
        ):
            out[key] = "0x" + bytes(value).hex()
        else:
            out[key] = value
    return out


_log = logging.getLogger(__name__)


def replacement_key(key: str, attempt: int) -> str:
    """The idempotency key of the ``attempt``-th replacement of the transaction signed under ``key``.

    Returns:
        ``KEY.rN``, or ``rN.<sha256 of KEY>`` when that would pass the 128-character limit.
    """
    plain = f"{key}.r{attempt}"
    if len(plain) <= 128:
        return plain
    return f"r{attempt}.{hashlib.sha256(key.encode()).hexdigest()}"


#: Words of the JSON-RPC errors of geth, l2geth, reth and anvil for a transaction priced too low.
_UNDERPRICED = ("base fee", "underpriced", "fee cap", "feecap", "max fee per gas")


def _underpriced(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _UNDERPRICED)


def _fees(signed: SignedTransaction) -> tuple[int, int]:
    fields = TypedTransaction.from_bytes(HexBytes(signed.raw_transaction)).as_dict()
    return int(fields["maxFeePerGas"]), int(fields["maxPriorityFeePerGas"])


class Transactor:
    """Send contract calls as the operator: build, sign through the signer, broadcast, wait.

    A transaction still unmined ``replace_after_s`` after it was sent (priced under the base fee,
    say, which would block every later nonce) is replaced: the signer re-signs it with the same
    nonce and both fees raised by ``fee_bump_pct`` (at least the 10 % a node's pool demands), or
    to what the chain asks now if that is more, never above the policy's ``max_fee_per_gas_wei``;
    then every version is watched until one is mined. The first call syncs the signer's nonce with
    the chain's confirmed transaction count.

    Args:
        w3: A web3 instance on the chain (read and broadcast only; it holds no key).
        signer: The signer client.
        receipt_timeout_s: How long to wait for a receipt over all versions, seconds.
        poll_s: Receipt polling interval, seconds.
        gas_margin_pct: Percent added to the gas estimate (20 = x1.2).
        replace_after_s: Seconds without a receipt before a version is replaced.
        fee_bump_pct: Percent by which a replacement raises both fees (>= 10).

    Raises:
        ValueError: ``fee_bump_pct`` < 10 or ``replace_after_s`` <= 0.
    """

    def __init__(
        self,
        w3: Any,
        signer: SignerClient,
        *,
        receipt_timeout_s: float = 120.0,
        poll_s: float = 0.2,
        gas_margin_pct: int = 20,
        replace_after_s: float = 30.0,
        fee_bump_pct: int = 15,
    ) -> None:
        if fee_bump_pct < 10 or replace_after_s <= 0:
            raise ValueError("fee_bump_pct must be >= 10 and replace_after_s > 0")
        self._w3 = w3
        self.signer = signer
        self._receipt_timeout_s = receipt_timeout_s
        self._poll_s = poll_s
        self._gas_margin_pct = gas_margin_pct
        self._replace_after_s = replace_after_s
        self._fee_bump_pct = fee_bump_pct
        self._synced = False
        self._limits: dict[str, Any] | None = None
        self._l1_ceilings: L1FeeParams | None = None

    @property
    def address(self) -> str:
        """The operator address."""
        return self.signer.address()

    def sync_nonce(self) -> int:
        """Raise the signer's nonce to the operator's confirmed transaction count.

        Returns:
            The signer's next nonce.
        """
        confirmed = int(self._w3.eth.get_transaction_count(self.address, "latest"))
        return self.signer.sync_nonce(confirmed)

    def transact(
        self,
        call: Any,
        *,
        idempotency_key: str,
        value_wei: int = 0,
        gas: int | None = None,
    ) -> Any:
        """Send one contract call and wait for it to be mined.

        Args:
            call: A web3 ``ContractFunction`` with its arguments bound
                (``contract.functions.settle(1, 1)``).
            idempotency_key: Names this operation; calling again with the same key (after a
                crash, a timeout, anything) never sends a second transaction.
            value_wei: Value to send.
            gas: Gas limit; estimated (plus the margin) when None.

        Returns:
            The transaction receipt (status 1).

        Raises:
            SignerRefused: The signer refused (policy, caps, authentication).
            SignerUnavailable: The signer could not be reached.
            WouldRevert: Gas estimation says the call reverts (nothing signed); the revert
                data is on the error (``contracts.decode_revert`` names it).
            TransactionReverted: Mined with status 0.
            TransactionFailed: Estimation or broadcast failed, or no receipt within the timeout.
        """
        if not self._synced:
            self.sync_nonce()
            self._synced = True
        earlier = self.signer.record(idempotency_key)
        if earlier is not None and earlier.get("kind") == "transaction":
            versions = [SignedTransaction.from_response(earlier)]
            while True:
                again = self.signer.record(replacement_key(idempotency_key, len(versions)))
                if again is None:
                    break
                versions.append(SignedTransaction.from_response(again))
            return self._send_until_mined(versions)
        tx = self.build(call, value_wei=value_wei, gas=gas)
        try:
            signed = self.signer.sign_transaction(tx, idempotency_key)
        except SignerRefused as exc:
            if exc.reason != "idempotency_conflict":
                raise
            # Signed meanwhile under this key (another attempt of ours): send that one.
            again = self.signer.record(idempotency_key)
            if again is None:
                raise
            signed = SignedTransaction.from_response(again)
        return self.broadcast_and_wait(signed)

    def build(self, call: Any, *, value_wei: int = 0, gas: int | None = None) -> dict[str, Any]:
        """The unsigned EIP-1559 fields of a call (no nonce), within the policy's caps.

        Args:
            call: A bound web3 ``ContractFunction``.
            value_wei: Value to send.
            gas: Gas limit, or None to estimate.

        Returns:
            ``chainId``, ``to``, ``data``, ``value``, ``gas``, ``maxFeePerGas``,
            ``maxPriorityFeePerGas``.

        Raises:
            WouldRevert: Gas estimation says the call reverts (revert data on the error).
            TransactionFailed: Gas estimation failed otherwise (transport, JSON-RPC), or the
                chain's L1GasPriceOracle inputs are above the policy's ``[l1_fee]`` ceilings (the
                signer's bound on the L1 fee would not hold; try again when L1 fees fall).
        """
        eth = self._w3.eth
        self._check_l1_fee_inputs()
        to = str(call.address)
        data = call._encode_transaction_data()
        limits = self._policy_limits()
        if gas is None:
            try:
                estimate = int(
                    eth.estimate_gas(
                        {"from": self.address, "to": to, "data": data, "value": value_wei}
                    )
                )
            except Exception as exc:  # web3 raises ContractLogicError, transport errors, ...
                from web3.exceptions import ContractLogicError  # loaded already: w3 is in use

                if isinstance(exc, ContractLogicError):  # the node says the call reverts
                    data = revert_data_of(exc)
                    raise WouldRevert(f"gas estimation failed: {exc}", data) from exc
                raise TransactionFailed(f"gas estimation failed: {exc}") from exc
            gas = estimate * (100 + self._gas_margin_pct) // 100
            cap = int(limits.get("max_gas_per_tx", gas))
            if estimate <= cap < gas:
                gas = cap
        base_fee = int(eth.get_block("latest").get("baseFeePerGas", 0))
        priority = int(eth.max_priority_fee)
        max_fee = 2 * base_fee + priority  # the usual headroom for six full blocks of +12.5 %
        fee_cap = int(limits.get("max_fee_per_gas_wei", max_fee))
        if max_fee > fee_cap >= base_fee + priority:
            max_fee = fee_cap
        return {
            "chainId": int(eth.chain_id),
            "to": to,
            "data": data if isinstance(data, str) else "0x" + bytes(data).hex(),
            "value": int(value_wei),
            "gas": int(gas),
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": min(priority, max_fee),
        }

    def broadcast_and_wait(self, signed: SignedTransaction) -> Any:
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

    def _send_until_mined(self, versions: list[SignedTransaction]) -> Any:
        eth = self._w3.eth
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
        eth = self._w3.eth
        current = versions[-1]
        if int(eth.get_transaction_count(current.sender, "latest")) > current.nonce:
            return None  # the nonce is used: a version was mined, its receipt is on its way
        old_max, old_priority = _fees(current)
        bump = 100 + self._fee_bump_pct
        base_fee = self._next_base_fee()
        priority = max(-(-old_priority * bump // 100), int(eth.max_priority_fee))
        max_fee = max(-(-old_max * bump // 100), 2 * base_fee + priority)
        cap = int(self._policy_limits().get("max_fee_per_gas_wei", max_fee))
        max_fee = min(max_fee, cap)
        priority = min(priority, max_fee)
        if max_fee * 100 < old_max * 110 or priority * 100 < old_priority * 110:
            _log.warning(
                "nonce %d stuck at maxFeePerGas %d: the policy's cap of %d wei leaves no room "
                "for a 10 %% raise",
                current.nonce,
                old_max,
                cap,
            )
            return None
        key = replacement_key(versions[0].idempotency_key, attempt)
        try:
            return self.signer.replace_transaction(current.idempotency_key, max_fee, priority, key)
        except SignerRefused as exc:
            if exc.reason == "idempotency_conflict":
                again = self.signer.record(key)
                if again is not None:
                    return SignedTransaction.from_response(again)
            _log.warning("replacement of nonce %d refused: %s", current.nonce, exc)
            return None

    def _next_base_fee(self) -> int:
        """The base fee of the next block (``eth_feeHistory``'s last entry, EIP-1559), or the latest's."""
        eth = self._w3.eth
        latest = int(eth.get_block("latest").get("baseFeePerGas", 0))
        try:
            history = eth.fee_history(1, "latest")
            return max(latest, int(history["baseFeePerGas"][-1]))
        except Exception:  # a node without eth_feeHistory
            return latest

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self._w3.eth.get_transaction_receipt(tx_hash)
        except Exception:  # TransactionNotFound while pending, or a transport error: poll again
            return None

    def _known(self, tx_hash: str) -> bool:
        try:
            return self._w3.eth.get_transaction(tx_hash) is not None
        except Exception:  # TransactionNotFound
            return False

    def _policy_limits(self) -> dict[str, Any]:
        if self._limits is None:
            policy = self.signer.policy()["policy"]
            self._limits = dict(policy["limits"])
            self._l1_ceilings = _ceilings(policy.get("l1_fee"))
        return self._limits

    def _check_l1_fee_inputs(self) -> None:
        self._policy_limits()
        if self._l1_ceilings is None:
            return
        from contracts.scroll import read_l1_fee_params  # the connector has web3 loaded anyway

        current = read_l1_fee_params(self._w3)
        if current is not None and not self._l1_ceilings.dominates(current):
            raise TransactionFailed(
                f"the chain's L1 fee inputs {current} are above the signer policy's [l1_fee] "
                f"ceilings {self._l1_ceilings}: not signing until L1 fees fall"
            )


def _ceilings(table: Mapping[str, Any] | None) -> L1FeeParams | None:
    if table is None:
        return None
    from contracts.scroll import L1FeeParams

    return L1FeeParams(
        l1_base_fee_wei=int(table["l1_base_fee_wei"]),
        l1_blob_base_fee_wei=int(table["l1_blob_base_fee_wei"]),
        commit_scalar=int(table["commit_scalar"]),
        blob_scalar=int(table["blob_scalar"]),
        penalty_factor=int(table["penalty_factor"]),
    )
