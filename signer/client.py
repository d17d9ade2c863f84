"""The caller library: talk to the signer, and send contract calls through it.

Used by the gateway's recorder, the settlement job and ``twopm publish`` (``clients`` never
imports it). Two layers:

- :class:`SignerClient`: one method per API route over httpx, each request signed with the
  caller's secret (:func:`signer._auth.sign_request`), transient failures retried with the same
  idempotency key, problem bodies translated into :class:`~signer._errors.SignerRefused`.
- :class:`RemoteSigner`: the signer as the signing backend of the one
  :class:`contracts.Transactor` (which estimates gas, fills EIP-1559 fees within the signer's
  policy caps, has the call signed, broadcasts it, waits for the receipt and replaces it when
  stuck). A retry with the same idempotency key (even from a restarted process) gets the same
  signed bytes, so it rebroadcasts the same transaction instead of making a second one.

Example::

    client = SignerClient("http://127.0.0.1:8547", "recorder", secret)
    tx = contracts.Transactor(w3, RemoteSigner(client))
    receipt = tx.transact(ledger.functions.recordBatch(...), idempotency_key=f"batch-{batch_id}")
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts.scroll import L1FeeParams
from contracts.tx import SignedTransaction as ContractsSignedTransaction
from contracts.tx import SigningLimits
from core.secrets import PrivateFileError, check_private_file
from signer._auth import sign_request
from signer._errors import ClientError, SignerRefused, SignerUnavailable


@dataclass(frozen=True)
class SignedTransaction(ContractsSignedTransaction):
    """A transaction signed by the signer (``idempotency_key`` always set).

    Attributes:
        raw_transaction: The EIP-2718 typed transaction bytes, ready for
            ``eth_sendRawTransaction``.
        hash: Transaction hash, 0x hex.
        nonce: The nonce the signer assigned.
        sender: The operator address.
        idempotency_key: The key it was signed under.
    """

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
            check_private_file(secret_file, "caller secret")
        except PrivateFileError as exc:
            raise ClientError(str(exc)) from exc
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

    def audit(self) -> dict[str, Any]:
        """The signer's newest audit entries (``GET /v1/audit``; this read is audited too).

        Returns:
            ``{head_seq, head_hash, entries}``, entries newest first without ``sig``/``prev``.
        """
        return self._request("GET", "/v1/audit")

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


class RemoteSigner:
    """The signer as a ``contracts.SigningBackend``: a :class:`contracts.Transactor` signing with it.

    The signer assigns nonces, keeps what it signed under each idempotency key (so a retry, even
    from a restarted process, rebroadcasts the same bytes instead of making a second transaction),
    and bounds gas and fees by its policy's ``[limits]`` and ``[l1_fee]`` ceilings.

    Args:
        client: The signer client.
    """

    assigns_nonces = True

    def __init__(self, client: SignerClient) -> None:
        self.client = client
        self._address: str | None = None

    @property
    def address(self) -> str:
        """The operator address (asked once)."""
        if self._address is None:
            self._address = self.client.address()
        return self._address

    def limits(self) -> SigningLimits:
        """The policy's gas and fee caps and L1 fee ceilings (``GET /v1/policy``).

        Raises:
            SignerRefused: The signer refused.
            SignerUnavailable: The signer could not be reached.
        """
        policy = self.client.policy()["policy"]
        limits = dict(policy["limits"])
        gas = limits.get("max_gas_per_tx")
        fee = limits.get("max_fee_per_gas_wei")
        return SigningLimits(
            max_gas_per_tx=None if gas is None else int(gas),
            max_fee_per_gas_wei=None if fee is None else int(fee),
            l1_fee_ceilings=_ceilings(policy.get("l1_fee")),
        )

    def sync_nonce(self, confirmed_nonce: int) -> int:
        """Raise the signer's next nonce to ``confirmed_nonce``; returns the signer's next nonce."""
        return self.client.sync_nonce(confirmed_nonce)

    def recorded(self, idempotency_key: str) -> SignedTransaction | None:
        """The transaction the signer signed under ``idempotency_key`` for this caller, if any."""
        earlier = self.client.record(idempotency_key)
        if earlier is None or earlier.get("kind") != "transaction":
            return None
        return SignedTransaction.from_response(earlier)

    def sign(self, tx: dict[str, Any], idempotency_key: str | None) -> SignedTransaction:
        """Have ``tx`` signed (the signer assigns the nonce).

        Args:
            tx: EIP-1559 fields without ``nonce``.
            idempotency_key: Required: names the operation.

        Returns:
            The signed transaction (the recorded one if another attempt of ours signed meanwhile).

        Raises:
            ValueError: No idempotency key.
            SignerRefused: The policy or the request was refused.
            SignerUnavailable: The signer could not be reached.
        """
        if idempotency_key is None:
            raise ValueError("the signer needs an idempotency key for every transaction")
        try:
            return self.client.sign_transaction(tx, idempotency_key)
        except SignerRefused as exc:
            if exc.reason != "idempotency_conflict":
                raise
            # Signed meanwhile under this key (another attempt of ours): send that one.
            again = self.client.record(idempotency_key)
            if again is None:
                raise
            return SignedTransaction.from_response(again)

    def replace(
        self,
        current: ContractsSignedTransaction,
        max_fee_per_gas_wei: int,
        max_priority_fee_per_gas_wei: int,
        idempotency_key: str | None,
    ) -> SignedTransaction | None:
        """Have ``current`` re-signed with these fees (``POST /v1/sign/replacement``).

        Returns:
            The replacement, or None when the signer refused (logged).

        Raises:
            SignerUnavailable: The signer could not be reached.
        """
        if current.idempotency_key is None or idempotency_key is None:
            return None
        try:
            return self.client.replace_transaction(
                current.idempotency_key,
                max_fee_per_gas_wei,
                max_priority_fee_per_gas_wei,
                idempotency_key,
            )
        except SignerRefused as exc:
            if exc.reason == "idempotency_conflict":
                again = self.client.record(idempotency_key)
                if again is not None:
                    return SignedTransaction.from_response(again)
            _log.warning("replacement of nonce %d refused: %s", current.nonce, exc)
            return None


def _ceilings(table: Mapping[str, Any] | None) -> L1FeeParams | None:
    if table is None:
        return None
    return L1FeeParams(
        l1_base_fee_wei=int(table["l1_base_fee_wei"]),
        l1_blob_base_fee_wei=int(table["l1_blob_base_fee_wei"]),
        commit_scalar=int(table["commit_scalar"]),
        blob_scalar=int(table["blob_scalar"]),
        penalty_factor=int(table["penalty_factor"]),
    )
