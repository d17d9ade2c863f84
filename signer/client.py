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

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.transactions import TransactionFailed, TransactionReverted, WouldRevert, revert_data_of
from signer._auth import sign_request
from signer._errors import ClientError, SignerRefused, SignerUnavailable


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


class Transactor:
    """Send contract calls as the operator: build, sign through the signer, broadcast, wait.

    Args:
        w3: A web3 instance on the chain (read and broadcast only; it holds no key).
        signer: The signer client.
        receipt_timeout_s: How long to wait for a receipt, seconds.
        poll_s: Receipt polling interval, seconds.
        gas_margin_pct: Percent added to the gas estimate (20 = x1.2).
    """

    def __init__(
        self,
        w3: Any,
        signer: SignerClient,
        *,
        receipt_timeout_s: float = 120.0,
        poll_s: float = 0.2,
        gas_margin_pct: int = 20,
    ) -> None:
        self._w3 = w3
        self.signer = signer
        self._receipt_timeout_s = receipt_timeout_s
        self._poll_s = poll_s
        self._gas_margin_pct = gas_margin_pct
        self._limits: dict[str, Any] | None = None

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
        earlier = self.signer.record(idempotency_key)
        if earlier is not None and earlier.get("kind") == "transaction":
            signed = SignedTransaction.from_response(earlier)
        else:
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
            TransactionFailed: Gas estimation failed otherwise (transport, JSON-RPC).
        """
        eth = self._w3.eth
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
        """Broadcast signed bytes (idempotently) and wait for the receipt.

        Args:
            signed: The signed transaction.

        Returns:
            The receipt (status 1).

        Raises:
            TransactionReverted: Mined with status 0.
            TransactionFailed: Rejected by the node, or no receipt within the timeout.
        """
        eth = self._w3.eth
        try:
            eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:  # the node's JSON-RPC error for a known/mined tx varies
            if not self._known(signed.hash):
                raise TransactionFailed(
                    f"broadcast of nonce {signed.nonce} failed: {exc}", signed.hash
                ) from exc
        try:
            receipt = eth.wait_for_transaction_receipt(
                signed.hash, timeout=self._receipt_timeout_s, poll_latency=self._poll_s
            )
        except Exception as exc:  # web3.exceptions.TimeExhausted and transport errors
            raise TransactionFailed(
                f"no receipt for {signed.hash} within {self._receipt_timeout_s} s: {exc}",
                signed.hash,
            ) from exc
        if int(receipt["status"]) != 1:
            raise TransactionReverted(f"transaction {signed.hash} reverted", signed.hash, receipt)
        return receipt

    def _known(self, tx_hash: str) -> bool:
        try:
            return self._w3.eth.get_transaction(tx_hash) is not None
        except Exception:  # TransactionNotFound
            return False

    def _policy_limits(self) -> dict[str, Any]:
        if self._limits is None:
            self._limits = dict(self.signer.policy()["policy"]["limits"])
        return self._limits
