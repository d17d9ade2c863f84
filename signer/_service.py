"""What the signer does with one request, independent of the HTTP framework.

:meth:`SignerService.handle` takes the raw method, path, headers and body, authenticates the
caller, checks the policy, signs, records and audits, all under one lock, and returns the
status and JSON body. Every request but ``/healthz`` leaves exactly one audit entry, whether it
was answered or refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import is_address, to_checksum_address
from hexbytes import HexBytes

from signer._auth import HEADER_CALLER, Callers, verify_request
from signer._errors import (
    IdempotencyConflict,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PolicyViolation,
    ServiceError,
)
from signer._policy import Policy, TxRequest
from signer._settings import SignerSettings
from signer._store import Store

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
#: Least raise, percent, of both fees of a same-nonce replacement (geth's txpool ``PriceBump``
#: default, which anvil and Scroll's l2geth apply too).
MIN_REPLACEMENT_BUMP_PCT = 10
_TX_FIELDS = {
    "chainId",
    "to",
    "data",
    "input",
    "value",
    "gas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "type",
    "from",
    "accessList",
}
_UINT256_MAX = 2**256 - 1
_PRUNE_EVERY = 256


@dataclass(frozen=True)
class Route:
    """One API route.

    Attributes:
        method: HTTP method.
        path: Path (no parameters except the trailing one of ``records``).
        event: Name written to the audit log.
    """

    method: str
    path: str
    event: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/address", "address"),
    Route("GET", "/v1/policy", "policy"),
    Route("GET", "/v1/nonce", "nonce"),
    Route("POST", "/v1/nonce/sync", "nonce_sync"),
    Route("POST", "/v1/sign/transaction", "sign_transaction"),
    Route("POST", "/v1/sign/typed-data", "sign_typed_data"),
    Route("POST", "/v1/sign/replacement", "replace_transaction"),
    Route("GET", "/v1/records/{key}", "record"),
    Route("GET", "/v1/audit", "audit"),
)

AUDIT_RECENT = 50
"""Entries ``GET /v1/audit`` returns (the newest, newest first)."""


class SignerService:
    """The signer's request handling.

    Args:
        settings: The settings.
        account: The operator account (its key stays in this object).
        policy: The loaded policy.
        callers: The callers file.
        store: The database and audit log.
        clock: Unix seconds (``time.time``); replaced only in tests.
    """

    def __init__(
        self,
        settings: SignerSettings,
        account: LocalAccount,
        policy: Policy,
        callers: Callers,
        store: Store,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._account = account
        self.address: str = str(account.address)
        self.policy = policy
        self._callers = callers
        self.store = store
        self._clock = clock
        self._signed_since_prune = 0

    def __repr__(self) -> str:
        return f"SignerService(address={self.address})"

    def handle(
        self,
        event: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        body_too_large: bool = False,
        path_param: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Authenticate, check, act and audit one request.

        Args:
            event: The route's event name (:data:`ROUTES`).
            method: HTTP method.
            path: Request path as received (signed by the caller).
            headers: Request headers (case-insensitive mapping).
            body: Raw body (empty when ``body_too_large``).
            body_too_large: The body was over the limit and not read.
            path_param: The ``{key}`` of ``/v1/records/{key}``.

        Returns:
            (HTTP status, JSON body); refusals are RFC 9457 problem bodies.
        """
        audit: dict[str, Any] = {"event": event, "method": method, "path": path}
        store = self.store
        with store.lock:
            seen: tuple[str, str] | None = None
            try:
                if body_too_large:
                    audit["caller_claimed"] = headers.get(HEADER_CALLER, "")[:64]
                    raise PayloadTooLarge(
                        "body_too_large",
                        f"the body is over {self._settings.max_body_bytes} bytes",
                    )
                caller, nonce = self._verify(headers, method, path, body, audit)
                # One transaction for the replay set, the work and its audit entry: one commit.
                with store.transaction():
                    self._remember(caller, nonce, audit)
                    seen = (caller, nonce)
                    audit["caller"] = caller
                    response = self._dispatch(event, caller, body, path_param, audit)
                    store.append_audit_in_transaction(audit)
                return 200, response
            except ServiceError as exc:
                audit.update(
                    outcome="refused", status=exc.status, reason=exc.reason, detail=exc.detail
                )
                with store.transaction():
                    if seen is not None:  # the work was rolled back; its request nonce stays used
                        with contextlib.suppress(ServiceError):
                            self._remember(*seen, {})
                    store.append_audit_in_transaction(audit)
                return exc.status, exc.problem()
            except Exception as exc:
                # A bug, not a refusal: still leave a trace (best effort), then let the app
                # answer a detail-free 500.
                audit.update(outcome="error", status=500, detail=type(exc).__name__)
                with contextlib.suppress(Exception), store.transaction():
                    store.append_audit_in_transaction(audit)
                raise

    # -- steps ---------------------------------------------------------------------------------

    def _verify(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        body: bytes,
        audit: dict[str, Any],
    ) -> tuple[str, str]:
        try:
            return verify_request(
                self._callers,
                headers,
                method,
                path,
                body,
                now_s=self._clock(),
                clock_skew_s=self._settings.clock_skew_s,
            )
        except NotAuthenticated:
            audit["caller_claimed"] = headers.get(HEADER_CALLER, "")[:64]
            raise

    def _remember(self, caller: str, nonce: str, audit: dict[str, Any]) -> None:
        fresh = self.store.remember_caller_nonce(
            caller,
            nonce,
            ttl_s=2 * self._settings.clock_skew_s + 1,
            bound=self._settings.replay_cache_max,
        )
        if not fresh:
            audit["caller_claimed"] = caller
            raise NotAuthenticated("replayed_request", "this request nonce was used before")

    def _dispatch(
        self,
        event: str,
        caller: str,
        body: bytes,
        path_param: str | None,
        audit: dict[str, Any],
    ) -> dict[str, Any]:
        if event == "sign_transaction":
            return self._sign_transaction(caller, body, audit)
        if event == "sign_typed_data":
            return self._sign_typed_data(caller, body, audit)
        if event == "replace_transaction":
            return self._replace_transaction(caller, body, audit)
        if event == "nonce_sync":
            return self._nonce_sync(body, audit)
        if event == "record":
            return self._record(caller, path_param or "", audit)
        if event == "address":
            response: dict[str, Any] = {"address": self.address}
        elif event == "policy":
            response = {
                "digest": self.policy.digest,
                "chain_id": self.policy.chain_id,
                "policy": self.policy.canonical(),
            }
        elif event == "nonce":
            response = {"next_nonce": self.store.next_nonce()}
        elif event == "audit":
            head = self.store.audit_head()
            entries = [
                {k: v for k, v in e.items() if k not in {"sig", "prev"}}
                for e in self.store.audit.recent(AUDIT_RECENT)
            ]
            response = {"head_seq": head.seq, "head_hash": head.hash, "entries": entries}
        else:  # pragma: no cover - the app only routes known events
            raise NotFound("not_found", f"no route {event}")
        audit.update(outcome="ok", status=200)
        return response

    def _sign_transaction(self, caller: str, body: bytes, audit: dict[str, Any]) -> dict[str, Any]:
        payload = _json_object(body)
        key = _idempotency_key(payload)
        audit["idempotency_key"] = key
        _only(payload, {"idempotency_key", "transaction"}, "body")
        tx = self._parse_transaction(payload.get("transaction"))
        audit["request"] = {
            "chainId": tx.chain_id,
            "to": tx.to,
            "selector": "0x" + tx.data[:4].hex(),
            "value": str(tx.value_wei),
            "gas": tx.gas,
            "maxFeePerGas": str(tx.max_fee_per_gas_wei),
            "maxPriorityFeePerGas": str(tx.max_priority_fee_per_gas_wei),
            "data_sha256": hashlib.sha256(tx.data).hexdigest(),
        }
        body_hash = _canonical_hash(
            {"kind": "transaction", **audit["request"], "data": tx.data.hex()}
        )
        # Inside handle()'s transaction: policy, windows, nonce, record and audit commit together.
        store = self.store
        earlier = store.find_record(caller, key)
        if earlier is not None:
            return self._replay(earlier, "transaction", body_hash, key, audit)
        function = self.policy.check_transaction(tx)
        entry = self._callers.get(caller)
        if entry is None or not entry.may_call(function.signature):
            raise PolicyViolation(
                "caller_not_allowed", f"caller {caller!r} may not call {function.signature}"
            )
        lim = self.policy.limits
        store.check_windows(
            tx.value_wei,
            max_tx_per_hour=lim.max_tx_per_hour,
            max_value_wei=lim.max_value_per_window_wei,
            value_window_s=lim.value_window_s,
        )
        nonce = store.take_nonce()
        try:
            signed = self._account.sign_transaction(tx.to_eth_account(nonce))
        except (TypeError, ValueError) as exc:  # eth-account's validation; rolls the nonce back
            raise MalformedRequest(
                "malformed_body", f"the transaction does not serialise: {type(exc).__name__}"
            ) from exc
        l1_bound = self.policy.check_total_fee(tx, bytes(signed.raw_transaction))  # rolls back too
        response = {
            "idempotency_key": key,
            "from": self.address,
            "nonce": nonce,
            "hash": "0x" + bytes(signed.hash).hex(),
            "raw_transaction": "0x" + bytes(signed.raw_transaction).hex(),
        }
        if l1_bound is not None:
            response["l1_fee_bound_wei"] = str(l1_bound)
            audit["l1_fee_bound_wei"] = str(l1_bound)
        store.insert_record(
            caller, key, "transaction", body_hash, response, nonce=nonce, value_wei=tx.value_wei
        )
        audit.update(
            outcome="signed",
            status=200,
            function=function.signature,
            nonce=nonce,
            tx_hash=response["hash"],
            policy_digest=self.policy.digest,
        )
        self._maybe_prune()
        return response

    def _replace_transaction(
        self, caller: str, body: bytes, audit: dict[str, Any]
    ) -> dict[str, Any]:
        """Re-sign one of the caller's transactions with the same nonce and higher fees.

        The body names the transaction to replace by its idempotency key (``replaces``) and gives
        the new ``maxFeePerGas`` and ``maxPriorityFeePerGas``; each must be at least
        :data:`MIN_REPLACEMENT_BUMP_PCT` percent above the replaced one's (the rule geth's and
        anvil's pools apply to a same-nonce replacement), and the policy's caps apply as to any
        transaction. No new nonce is taken; the replacement counts toward ``max_tx_per_hour`` but
        carries no new value.
        """
        payload = _json_object(body)
        key = _idempotency_key(payload)
        audit["idempotency_key"] = key
        _only(
            payload,
            {"idempotency_key", "replaces", "maxFeePerGas", "maxPriorityFeePerGas"},
            "body",
        )
        replaces = payload.get("replaces")
        if not isinstance(replaces, str) or not _IDEMPOTENCY_KEY.match(replaces):
            raise MalformedRequest("malformed_body", "replaces must be an idempotency key")
        max_fee = _uint(payload.get("maxFeePerGas"), "maxFeePerGas", 2**256 - 1)
        priority = _uint(payload.get("maxPriorityFeePerGas"), "maxPriorityFeePerGas", 2**256 - 1)
        audit["request"] = {
            "replaces": replaces,
            "maxFeePerGas": str(max_fee),
            "maxPriorityFeePerGas": str(priority),
        }
        body_hash = _canonical_hash({"kind": "replacement", **audit["request"]})
        store = self.store
        earlier = store.find_record(caller, key)
        if earlier is not None:
            return self._replay(earlier, "transaction", body_hash, key, audit)
        original = store.find_record(caller, replaces)
        if original is None or original.kind != "transaction":
            raise NotFound("not_found", f"no transaction of this caller under {replaces!r}")
        old = TypedTransaction.from_bytes(
            HexBytes(str(original.response["raw_transaction"]))
        ).as_dict()
        for name, new in (("maxFeePerGas", max_fee), ("maxPriorityFeePerGas", priority)):
            least = -(-int(old[name]) * (100 + MIN_REPLACEMENT_BUMP_PCT) // 100)
            if new < least:
                raise PolicyViolation(
                    "replacement_underpriced",
                    f"{name} {new} wei is under {least} wei, {MIN_REPLACEMENT_BUMP_PCT} % above "
                    f"the replaced transaction's {old[name]} wei",
                )
        tx = TxRequest(
            chain_id=int(old["chainId"]),
            to=to_checksum_address(bytes(old["to"])),
            data=bytes(old["data"]),
            value_wei=int(old["value"]),
            gas=int(old["gas"]),
            max_fee_per_gas_wei=max_fee,
            max_priority_fee_per_gas_wei=priority,
        )
        function = self.policy.check_transaction(tx)
        entry = self._callers.get(caller)
        if entry is None or not entry.may_call(function.signature):
            raise PolicyViolation(
                "caller_not_allowed", f"caller {caller!r} may not call {function.signature}"
            )
        lim = self.policy.limits
        store.check_windows(
            0,
            max_tx_per_hour=lim.max_tx_per_hour,
            max_value_wei=lim.max_value_per_window_wei,
            value_window_s=lim.value_window_s,
        )
        nonce = int(old["nonce"])
        signed = self._account.sign_transaction(tx.to_eth_account(nonce))
        l1_bound = self.policy.check_total_fee(tx, bytes(signed.raw_transaction))
        response = {
            "idempotency_key": key,
            "from": self.address,
            "nonce": nonce,
            "hash": "0x" + bytes(signed.hash).hex(),
            "raw_transaction": "0x" + bytes(signed.raw_transaction).hex(),
            "replaces": str(original.response["hash"]),
        }
        if l1_bound is not None:
            response["l1_fee_bound_wei"] = str(l1_bound)
            audit["l1_fee_bound_wei"] = str(l1_bound)
        store.insert_record(caller, key, "transaction", body_hash, response, nonce=nonce)
        audit.update(
            outcome="signed",
            status=200,
            function=function.signature,
            nonce=nonce,
            tx_hash=response["hash"],
            replaces=response["replaces"],
            policy_digest=self.policy.digest,
        )
        self._maybe_prune()
        return response

    def _sign_typed_data(self, caller: str, body: bytes, audit: dict[str, Any]) -> dict[str, Any]:
        payload = _json_object(body)
        key = _idempotency_key(payload)
        audit["idempotency_key"] = key
        _only(payload, {"idempotency_key", "typed_data"}, "body")
        typed = payload.get("typed_data")
        if not isinstance(typed, dict):
            raise MalformedRequest("malformed_body", "typed_data must be an EIP-712 object")
        _only(typed, {"types", "primaryType", "domain", "message"}, "typed_data")
        domain, primary = typed.get("domain"), typed.get("primaryType")
        if not isinstance(domain, dict) or not isinstance(primary, str):
            raise MalformedRequest("malformed_body", "typed_data needs domain and primaryType")
        audit["request"] = {"domain": domain, "primaryType": primary}
        try:
            signable = encode_typed_data(full_message=typed)
        except Exception as exc:  # eth-account raises many types for malformed EIP-712
            raise MalformedRequest(
                "malformed_body", f"typed_data is not valid EIP-712: {type(exc).__name__}"
            ) from exc
        body_hash = _canonical_hash({"kind": "typed_data", "typed": typed})
        store = self.store
        earlier = store.find_record(caller, key)
        if earlier is not None:
            return self._replay(earlier, "typed_data", body_hash, key, audit)
        self.policy.check_typed_data(domain, primary)
        entry = self._callers.get(caller)
        if entry is None or not entry.may_sign_type(primary):
            raise PolicyViolation(
                "caller_not_allowed", f"caller {caller!r} may not sign {primary!r} data"
            )
        store.check_typed_data_rate(self.policy.limits.max_typed_data_per_hour)
        signed = self._account.sign_message(signable)
        response = {
            "idempotency_key": key,
            "from": self.address,
            "hash": "0x" + bytes(signed.message_hash).hex(),
            "signature": "0x" + bytes(signed.signature).hex(),
        }
        store.insert_record(caller, key, "typed_data", body_hash, response)
        self._maybe_prune()
        audit.update(
            outcome="signed",
            status=200,
            message_hash=response["hash"],
            policy_digest=self.policy.digest,
        )
        return response

    def _replay(
        self, earlier: Any, kind: str, body_hash: str, key: str, audit: dict[str, Any]
    ) -> dict[str, Any]:
        if earlier.kind != kind or earlier.body_sha256 != body_hash:
            raise IdempotencyConflict(
                "idempotency_conflict",
                f"idempotency key {key!r} was used before with a different request",
            )
        response: dict[str, Any] = earlier.response
        audit.update(
            outcome="replayed",
            status=200,
            nonce=response.get("nonce"),
            tx_hash=response.get("hash"),
        )
        return response

    def _nonce_sync(self, body: bytes, audit: dict[str, Any]) -> dict[str, Any]:
        payload = _json_object(body)
        _only(payload, {"confirmed_nonce"}, "body")
        confirmed = _uint(payload.get("confirmed_nonce"), "confirmed_nonce", 2**63 - 1)
        before, after = self.store.raise_nonce(confirmed)
        audit.update(
            outcome="ok", status=200, confirmed_nonce=confirmed, before=before, after=after
        )
        return {"next_nonce": after, "raised": after != before}

    def _record(self, caller: str, key: str, audit: dict[str, Any]) -> dict[str, Any]:
        audit["idempotency_key"] = key[:128]
        record = self.store.find_record(caller, key)
        if record is None:
            raise NotFound("not_found", "no record under this idempotency key for this caller")
        audit.update(outcome="ok", status=200)
        return {"kind": record.kind, **record.response}

    def _parse_transaction(self, raw: Any) -> TxRequest:
        if not isinstance(raw, dict):
            raise MalformedRequest("malformed_body", "transaction must be an object")
        if "nonce" in raw:
            raise MalformedRequest("malformed_body", "leave the nonce out: the signer assigns it")
        if "gasPrice" in raw or "maxFeePerBlobGas" in raw or "blobVersionedHashes" in raw:
            raise MalformedRequest(
                "unsupported_transaction", "only EIP-1559 (type 2) transactions are signed"
            )
        _only(raw, _TX_FIELDS, "transaction")
        if raw.get("type", 2) not in (2, "0x2", "0x02"):
            raise MalformedRequest(
                "unsupported_transaction", "only EIP-1559 (type 2) transactions are signed"
            )
        if raw.get("accessList") not in (None, []):
            raise MalformedRequest("unsupported_transaction", "access lists are not signed")
        to = raw.get("to")
        if to in (None, "", "0x"):
            raise MalformedRequest("unsupported_transaction", "contract creation is never signed")
        if not isinstance(to, str) or not is_address(to):
            raise MalformedRequest("malformed_body", "to must be a 20-byte address")
        sender = raw.get("from")
        if sender is not None and (
            not isinstance(sender, str) or sender.lower() != self.address.lower()
        ):
            raise MalformedRequest("malformed_body", "from, when given, must be the operator")
        if "data" in raw and "input" in raw and raw["data"] != raw["input"]:
            raise MalformedRequest("malformed_body", "data and input differ")
        data_hex = raw.get("data", raw.get("input", "0x"))
        if not isinstance(data_hex, str) or not data_hex.startswith("0x"):
            raise MalformedRequest("malformed_body", "data must be 0x-prefixed hex")
        try:
            data = bytes.fromhex(data_hex[2:])
        except ValueError as exc:
            raise MalformedRequest("malformed_body", "data must be 0x-prefixed hex") from exc
        if len(data) < 4:
            raise PolicyViolation("unknown_function", "calldata has no 4-byte selector")
        for required in ("chainId", "gas", "maxFeePerGas", "maxPriorityFeePerGas"):
            if required not in raw:
                raise MalformedRequest("malformed_body", f"transaction.{required} is missing")
        return TxRequest(
            chain_id=_uint(raw["chainId"], "chainId", 2**64 - 1),
            to=str(to_checksum_address(to)),
            data=data,
            value_wei=_uint(raw.get("value", 0), "value", _UINT256_MAX),
            gas=_uint(raw["gas"], "gas", 2**64 - 1),
            max_fee_per_gas_wei=_uint(raw["maxFeePerGas"], "maxFeePerGas", _UINT256_MAX),
            max_priority_fee_per_gas_wei=_uint(
                raw["maxPriorityFeePerGas"], "maxPriorityFeePerGas", _UINT256_MAX
            ),
        )

    def _maybe_prune(self) -> None:
        self._signed_since_prune += 1
        if self._signed_since_prune >= _PRUNE_EVERY:
            self._signed_since_prune = 0
            self.store.prune(self._settings.idempotency_retention_s)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedRequest("malformed_body", "the body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise MalformedRequest("malformed_body", "the body must be a JSON object")
    return payload


def _idempotency_key(payload: Mapping[str, Any]) -> str:
    key = payload.get("idempotency_key")
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.match(key):
        raise MalformedRequest(
            "malformed_body", "idempotency_key must be 8-128 characters of A-Z a-z 0-9 _ . : -"
        )
    return key


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = set(table) - allowed
    if extra:
        raise MalformedRequest(
            "malformed_body", f"unknown fields in {where}: {', '.join(sorted(extra))}"
        )


def _uint(value: Any, name: str, maximum: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16) if value.startswith("0x") else int(value, 10)
        except ValueError:
            number = None
    if number is None or not 0 <= number <= maximum:
        raise MalformedRequest(
            "malformed_body", f"{name} must be an unsigned integer (number, decimal or 0x hex)"
        )
    return number


def _canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
