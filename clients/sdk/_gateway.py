"""The HTTP client of the 2PM gateway (httpx).

Wire shapes the client relies on (DESIGN.md fixes the routes; the bodies of the
inference routes are this SDK's proposal until the gateway's own land):

* ``GET /v1/subnets/{id}``: JSON with ``id``, ``name``, ``owner``, ``price_per_row_wei``
  (decimal string), ``min_stake_wei``, ``model_version``, ``model_hash``, and for
  inference ``feature_names`` (list) and ``ckks`` (``CkksParams.to_dict()``, with
  ``layouts``).
* ``POST /v1/subnets/{id}/predict``: JSON ``{"rows": [{feature: value, ...}, ...]}`` ->
  ``{"probabilities": [...], "logits": [...]?}``; receipt id in ``X-Receipt-Id``.
* ``POST /v1/he/contexts``: body = the public context frame
  (``application/octet-stream``) -> ``{"context_id": sha256 hex, ...}``.
* ``POST /v1/subnets/{id}/infer``: body = the request frame (``application/octet-stream``),
  header ``X-Context-Id`` -> the response frame; receipt id in ``X-Receipt-Id``; a 404
  whose problem type ends in ``he-context-not-found`` makes the client upload again once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

import httpx
import numpy as np
import numpy.typing as npt

from ckks import CkksError, Layout, SetClient, sigmoid
from clients.sdk._chain import ChainClient
from clients.sdk._encrypted import (
    MAX_ROWS_PER_ROW_REQUEST,
    CachedContext,
    ContextCache,
    as_matrix,
    choose_layout,
    choose_wire,
    params_of,
    set_of,
    split_rows,
)
from clients.sdk._exceptions import (
    AuthError,
    InvalidInput,
    NotFound,
    ServerError,
    TransactionReverted,
    TwoPMError,
    error_from_response,
    translate_transport_error,
)
from clients.sdk._types import (
    ApiKey,
    Me,
    NewApiKey,
    Prediction,
    ProvenBatch,
    ProvenPrediction,
    ReceiptCheck,
    ReceiptRecord,
    SignedSpendingAuthorization,
    Subnet,
)
from clients.sdk._wallet import SIWE_STATEMENT, Wallet
from contracts.merkle import receipt_leaf, verify_proof
from core.protocol import CONTEXT_HEADER, HE_CONTEXT_NOT_FOUND, RECEIPT_HEADER, SESSION_COOKIE

__all__ = ["AsyncGatewayClient", "GatewayClient"]

T = TypeVar("T")


class _FromJson(Protocol):
    """A response type built from a decoded JSON object (every class in ``_types``)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self: ...


J = TypeVar("J", bound=_FromJson)
P = TypeVar("P", ProvenPrediction, ProvenBatch)

BINARY = "application/octet-stream"
"""Media type of encrypted frames (no base64)."""


def _subnet_id(subnet: int | Subnet) -> int:
    subnet_id = subnet.id if isinstance(subnet, Subnet) else subnet
    if isinstance(subnet_id, bool) or not isinstance(subnet_id, int) or subnet_id < 1:
        raise InvalidInput(f"subnet must be a positive id or a Subnet, got {subnet!r}")
    return subnet_id


@dataclass(frozen=True)
class _Call:
    """One HTTP request a flow wants sent."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True


_Flow = Generator[_Call, httpx.Response, T]
"""A sans-I/O operation: yields requests, receives responses (or has errors thrown in)."""


def _json_of(response: httpx.Response, path: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ServerError(response.status_code, "Unreadable response", f"{path}: not JSON") from exc


def _parse(cls: type[J], data: Any, path: str) -> J:
    try:
        return cls.from_json(data)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ServerError(0, "Unexpected response", f"{path}: {type(exc).__name__}: {exc}") from exc


def _one_row_fields(data: Any) -> dict[str, Any]:
    """The fields of a one-row proven answer that a batch's lacks (``ProvenPrediction``)."""
    return {
        "probability": float(data["probabilities"][0]),
        "logit": float(data["logits"][0]),
        "proven_logit": float(data["proven_logit"]),
    }


def _batch_fields(data: Any) -> dict[str, Any]:
    """The fields of a batch proven answer that a one-row's lacks (``ProvenBatch``)."""
    return {
        "probabilities": tuple(float(v) for v in data["probabilities"]),
        "logits": tuple(float(v) for v in data["logits"]),
        "proven_logits": tuple(float(v) for v in data["proven_logits"]),
        "logit_words": tuple(int(str(v), 16) for v in data["logit_words"]),
        "pad_logit": int(str(data["pad_logit_word"]), 16),
    }


def _check_receipt_id(receipt_id: str) -> str:
    raw = receipt_id.removeprefix("0x")
    if len(raw) != 64 or any(c not in "0123456789abcdefABCDEF" for c in raw):
        raise InvalidInput("a receipt id is 0x and 64 hex digits")
    return f"/v1/receipts/0x{raw}"


def check_receipt(record: ReceiptRecord, chain: ChainClient) -> ReceiptCheck:
    """Check a receipt's Merkle proof against the root on chain (see ``verify_receipt``).

    Args:
        record: The receipt and its proof.
        chain: A client of the gateway's chain.

    Returns:
        The outcome.

    Raises:
        ChainError: The chain is unreachable.
    """
    leaf = receipt_leaf(record.receipt)
    leaf_hex = "0x" + leaf.hex()
    batch = record.batch
    if record.status == "failed":
        error = batch.error if batch is not None else None
        return ReceiptCheck(
            False, f"the gateway failed to record it: {error}", None, None, leaf_hex
        )
    if (
        record.status != "recorded"
        or batch is None
        or batch.batch_id is None
        or record.proof is None
    ):
        status = record.status
        return ReceiptCheck(False, f"not recorded yet (status {status})", None, None, leaf_hex)
    if record.leaf is not None and record.leaf.lower() != leaf_hex:
        mismatch = "the gateway's leaf does not match the receipt's fields"
        return ReceiptCheck(False, mismatch, batch.batch_id, None, leaf_hex)
    try:
        root = chain.batch_root(batch.batch_id)
    except TransactionReverted as exc:
        missing = f"batch {batch.batch_id} is not on chain ({exc.error_name})"
        return ReceiptCheck(False, missing, batch.batch_id, None, leaf_hex)
    root_hex = "0x" + root.hex()
    proof = list(record.proof)
    local = verify_proof(root, leaf, proof)
    on_chain = chain.verify_receipt_on_chain(batch.batch_id, record.receipt, proof)
    reason: str | None = None
    if not local or not on_chain:
        reason = "the proof does not lead to the root recorded on chain"
    elif batch.root.lower() != root_hex:
        reason = "the gateway reports another root than the chain"
    return ReceiptCheck(reason is None, reason, batch.batch_id, root_hex, leaf_hex, local, on_chain)


class _Protocol:
    """State and sans-I/O flows shared by the sync and async clients."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        session_token: str | None,
        max_contexts: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session_token = session_token
        self._contexts = ContextCache(max_contexts)
        self._set_clients: dict[str, SetClient] = {}  # one secret key per named set, in memory

    def _headers(self, call: _Call) -> dict[str, str]:
        headers: dict[str, str] = {}
        if call.authenticated and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif call.authenticated and self.session_token:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.session_token}"
        headers.update(call.headers)
        return headers

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    # ------------------------------------------------------------------ flows

    def _get_json(self, path: str, authenticated: bool = True) -> _Flow[Any]:
        response = yield _Call("GET", path, authenticated=authenticated)
        return _json_of(response, path)

    def _health(self) -> _Flow[bool]:
        data = yield from self._get_json("/healthz", authenticated=False)
        return isinstance(data, dict) and data.get("status") == "ok"

    def _sign_in(
        self,
        wallet: Wallet,
        statement: str | None,
        expected_domain: str | None,
        expected_chain_id: int | None,
        expires_in_s: float | None,
    ) -> _Flow[str]:
        nonce = yield from self._get_json("/v1/auth/nonce", authenticated=False)
        try:
            domain, uri = str(nonce["domain"]), str(nonce["uri"])
            chain_id, value = int(nonce["chain_id"]), str(nonce["nonce"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerError(200, "Unexpected response", "/v1/auth/nonce lacks a field") from exc
        if expected_domain is not None and domain != expected_domain:
            detail = f"gateway asks to sign for {domain!r}, expected {expected_domain!r}"
            raise AuthError(0, "Domain mismatch", detail)
        if expected_chain_id is not None and chain_id != expected_chain_id:
            detail = f"gateway asks for chain {chain_id}, expected {expected_chain_id}"
            raise AuthError(0, "Chain mismatch", detail)
        message, signature = wallet.sign_siwe(
            domain=domain,
            uri=uri,
            chain_id=chain_id,
            nonce=value,
            statement=statement,
            expires_in_s=expires_in_s,
        )
        body = {"message": message, "signature": signature}
        response = yield _Call("POST", "/v1/auth/verify", json=body, authenticated=False)
        token = _session_cookie(response)
        if not token:
            raise ServerError(response.status_code, "No session", "the gateway set no cookie")
        self.session_token = token
        return token

    def _logout(self) -> _Flow[None]:
        if self.session_token:
            cookie = {"Cookie": f"{SESSION_COOKIE}={self.session_token}"}
            yield _Call("POST", "/v1/auth/logout", headers=cookie, authenticated=False)
        self.session_token = None

    def _me(self) -> _Flow[Me]:
        return _parse(Me, (yield from self._get_json("/v1/me")), "/v1/me")

    def _create_api_key(self, name: str, subnets: list[int] | None) -> _Flow[NewApiKey]:
        response = yield _Call("POST", "/v1/keys", json={"name": name, "subnets": subnets})
        return _parse(NewApiKey, _json_of(response, "/v1/keys"), "/v1/keys")

    def _list_api_keys(self) -> _Flow[list[ApiKey]]:
        data = yield from self._get_json("/v1/keys")
        try:
            return [ApiKey.from_json(k) for k in data["keys"]]
        except (KeyError, ValueError, TypeError) as exc:
            raise ServerError(200, "Unexpected response", f"/v1/keys: {exc}") from exc

    def _revoke_api_key(self, key_id: str) -> _Flow[None]:
        if not key_id or "/" in key_id:
            raise InvalidInput("key_id must be a key's id")
        yield _Call("DELETE", f"/v1/keys/{key_id}")

    def _subnets(self) -> _Flow[list[Subnet]]:
        data = yield from self._get_json("/v1/subnets", authenticated=False)
        try:
            return [Subnet.from_json(s) for s in data["subnets"]]
        except (KeyError, ValueError, TypeError) as exc:
            raise ServerError(200, "Unexpected response", f"/v1/subnets: {exc}") from exc

    def _subnet(self, subnet_id: int) -> _Flow[Subnet]:
        path = f"/v1/subnets/{_subnet_id(subnet_id)}"
        return _parse(Subnet, (yield from self._get_json(path, authenticated=False)), path)

    def _submit_spending_authorization(self, signed: SignedSpendingAuthorization) -> _Flow[str]:
        path = "/v1/spending-authorizations"
        response = yield _Call("POST", path, json=signed.to_json())
        data = _json_of(response, path)
        try:
            return str(data["tx_hash"])
        except (KeyError, TypeError) as exc:
            raise ServerError(response.status_code, "Unexpected response", "no tx_hash") from exc

    def _predict(self, subnet: int | Subnet, rows: Any) -> _Flow[Prediction]:
        subnet_id = _subnet_id(subnet)
        if isinstance(rows, list | tuple) and rows and all(isinstance(r, Mapping) for r in rows):
            named = [dict(r) for r in rows]
        else:
            info = subnet if isinstance(subnet, Subnet) else (yield from self._subnet(subnet_id))
            if not info.feature_names:
                raise InvalidInput("the subnet does not name its features; pass rows as mappings")
            matrix = as_matrix(rows, info.feature_names)
            named = [dict(zip(info.feature_names, map(float, r), strict=True)) for r in matrix]
        path = f"/v1/subnets/{subnet_id}/predict"
        response = yield _Call("POST", path, json={"rows": named})
        data = _json_of(response, path)
        try:
            probabilities = np.asarray(data["probabilities"], dtype=np.float64)
            logits = data.get("logits")
            logit_array = None if logits is None else np.asarray(logits, dtype=np.float64)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerError(
                response.status_code, "Unexpected response", f"{path}: {exc}"
            ) from exc
        if probabilities.shape != (len(named),):
            detail = f"{path}: {probabilities.shape} probabilities for {len(named)} rows"
            raise ServerError(response.status_code, "Unexpected response", detail)
        receipt_id = response.headers.get(RECEIPT_HEADER) or data.get("receipt_id")
        return Prediction(probabilities, logit_array, (receipt_id,) if receipt_id else (), "plain")

    def _predict_proven(
        self, subnet: int | Subnet, row: Mapping[str, float]
    ) -> _Flow[ProvenPrediction]:
        return (
            yield from self._post_proven(subnet, [row], ProvenPrediction, _one_row_fields, None)
        )

    def _predict_proven_batch(
        self, subnet: int | Subnet, rows: Sequence[Mapping[str, float]]
    ) -> _Flow[ProvenBatch]:
        return (
            yield from self._post_proven(
                subnet, rows, ProvenBatch, _batch_fields, lambda p: len(p.logit_words)
            )
        )

    def _post_proven(
        self,
        subnet: int | Subnet,
        rows: Sequence[Mapping[str, float]],
        build: Callable[..., P],
        own_fields: Callable[[Any], dict[str, Any]],
        rows_proven: Callable[[P], int] | None,
    ) -> _Flow[P]:
        """``POST /v1/subnets/{id}/predict?proof=true`` and read the proven answer.

        Args:
            subnet: Subnet id or object.
            rows: Feature name -> value, per row (one for a one-row proof).
            build: ``ProvenPrediction`` or ``ProvenBatch``.
            own_fields: Reads the fields only ``build`` has from the decoded body (keyword ->
                value); the proof fields both share are read here, after them.
            rows_proven: How many rows the answer proves, checked against ``len(rows)``; None
                when the body's shape fixes it (one row).

        Raises:
            ServerError: The body is not JSON, a field is missing or malformed, or the answer
                proves another number of rows ("Unexpected response", the request's path and
                what is wrong in the detail).
        """
        path = f"/v1/subnets/{_subnet_id(subnet)}/predict?proof=true"
        response = yield _Call("POST", path, json={"rows": [dict(r) for r in rows]})
        data = _json_of(response, path)
        try:
            proven = build(
                **own_fields(data),
                proof=bytes.fromhex(str(data["proof"]).removeprefix("0x")),
                instances=tuple(int(str(v), 16) for v in data["instances"]),
                verifier=str(data["verifier"]),
                model_commitment=int(str(data["model_commitment"]), 16),
                model_version=int(data["model_version"]),
                proving_s=float(data.get("proving_s") or 0.0),
                receipt_id=response.headers.get(RECEIPT_HEADER),
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ServerError(
                response.status_code, "Unexpected response", f"{path}: {exc}"
            ) from exc
        if rows_proven is not None and rows_proven(proven) != len(rows):
            detail = f"{path}: {rows_proven(proven)} proven logits for {len(rows)} rows"
            raise ServerError(response.status_code, "Unexpected response", detail)
        return proven

    def _upload_context(self, entry: CachedContext) -> _Flow[str]:
        path = "/v1/he/contexts"
        body = entry.context.public_bytes()
        response = yield _Call("POST", path, content=body, headers={"Content-Type": BINARY})
        data = _json_of(response, path)
        try:
            context_id = str(data.get("context_id") or data["id"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ServerError(
                response.status_code, "Unexpected response", f"{path}: no context_id"
            ) from exc
        entry.context_id = context_id
        return context_id

    def _infer(self, subnet_id: int, entry: CachedContext, body: bytes) -> _Flow[httpx.Response]:
        context_id = entry.context_id or (yield from self._upload_context(entry))
        path = f"/v1/subnets/{subnet_id}/infer"
        for attempt in (0, 1):
            headers = {"Content-Type": BINARY, "Accept": BINARY, CONTEXT_HEADER: context_id}
            try:
                return (yield _Call("POST", path, content=body, headers=headers))
            except NotFound as exc:
                if attempt or not exc.problem_type.endswith(HE_CONTEXT_NOT_FOUND):
                    raise
                context_id = yield from self._upload_context(entry)  # expired there: once more
        raise AssertionError("unreachable")  # pragma: no cover

    def _predict_in_set(self, info: Subnet, rows: Any, name: str) -> _Flow[Prediction]:
        pset, affine = set_of(info.raw, name, info.id)
        x = as_matrix(rows, info.feature_names)
        if x.shape[1] != len(affine.weights):
            raise InvalidInput(
                f"rows have {x.shape[1]} features, the subnet expects {len(affine.weights)}"
            )
        z = affine.standardise(x)
        client = self._set_clients.get(name)
        if client is None:
            client = self._set_clients[name] = SetClient(pset)
        path = f"/v1/subnets/{info.id}/infer"
        headers = {"Content-Type": BINARY, "Accept": BINARY}
        logits = np.empty(x.shape[0])
        receipts: list[str] = []
        for start in range(0, x.shape[0], MAX_ROWS_PER_ROW_REQUEST):
            part = slice(start, min(start + MAX_ROWS_PER_ROW_REQUEST, x.shape[0]))
            try:
                body = client.encrypt(z[part])
            except CkksError as exc:
                raise InvalidInput(str(exc)) from exc
            response = yield _Call("POST", path, content=body, headers=headers)
            _take_answer(client, response, part, logits, receipts)
        return Prediction(sigmoid(logits), logits, tuple(receipts), Layout.COEFF.label, name)

    def _predict_encrypted(
        self, subnet: int | Subnet, rows: Any, layout: str | None, params: str | None = None
    ) -> _Flow[Prediction]:
        if isinstance(subnet, Subnet):
            info = subnet
        else:
            info = yield from self._subnet(_subnet_id(subnet))
        if params is not None:
            if layout not in (None, Layout.COEFF.label):
                raise InvalidInput(f"the {params} parameter set takes the coeff layout only")
            return (yield from self._predict_in_set(info, rows, params))
        ckks_params, offered = params_of(info.ckks, info.id)
        x = as_matrix(rows, info.feature_names)
        n_rows, n_features = x.shape
        if layout is None:
            chosen = choose_layout(n_rows, n_features, offered)
        else:
            try:
                chosen = Layout.from_label(layout)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from exc
        entry = self._contexts.get(ckks_params, chosen, n_features)
        logits = np.empty(n_rows)
        receipts: list[str] = []
        wire = choose_wire(chosen, n_features, ckks_params)
        for part in split_rows(n_rows, chosen, ckks_params):
            try:
                body = entry.context.encrypt(x[part], chosen, wire=wire)
            except CkksError as exc:
                raise InvalidInput(str(exc)) from exc
            response = yield from self._infer(info.id, entry, body)
            _take_answer(entry.context, response, part, logits, receipts)
        return Prediction(sigmoid(logits), logits, tuple(receipts), chosen.label)

    def _receipt(self, receipt_id: str) -> _Flow[ReceiptRecord]:
        path = _check_receipt_id(receipt_id)
        return _parse(ReceiptRecord, (yield from self._get_json(path)), path)


class GatewayClient(_Protocol):
    """A typed client of the 2PM gateway for app developers and wallet owners (blocking).

    Authenticate with an API key (``Authorization: Bearer``) or by signing in with
    Ethereum (:meth:`sign_in`, which keeps the session token and sends it as the
    ``twopm_session`` cookie, also over plain-HTTP loopback). Every failure is one of the
    SDK's :class:`~clients.sdk.TwoPMError` subclasses; no httpx error escapes. Not
    thread-safe: use one client per thread. :class:`AsyncGatewayClient` is the asyncio
    twin with the same methods.

    Args:
        base_url: The gateway's URL, e.g. ``https://gw.example.org``.
        api_key: An API key ``twopm_<id>_<secret>``, or None.
        session_token: A session token from an earlier :meth:`sign_in`, or None.
        timeout_s: Seconds allowed for each request (connect, read, write).
        transport: An httpx transport to use (tests plug faults in here).
        max_contexts: Most CKKS contexts kept for :meth:`predict_encrypted`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        max_contexts: int = 8,
    ) -> None:
        super().__init__(base_url, api_key, session_token, max_contexts)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ the one I/O boundary

    def _send(self, call: _Call) -> httpx.Response:
        """Send one request; translate every failure into the SDK's errors.

        Raises:
            TransportError: No answer (connection, timeout, protocol).
            ApiError: The gateway answered with status >= 400 (subclass by status).
        """
        try:
            response = self._http.request(
                call.method,
                call.path,
                json=call.json,
                content=call.content,
                headers=self._headers(call),
            )
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, self.base_url + call.path) from exc
        finally:
            self._http.cookies.clear()  # the session is sent by hand (see _headers)
        return self._checked(response)

    def _run(self, flow: _Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    response = self._send(call)
                except TwoPMError as exc:
                    call = flow.throw(exc)
                else:
                    call = flow.send(response)
        except StopIteration as stop:
            return cast(T, stop.value)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request to any route (for routes this SDK has no method for).

        Args:
            method: HTTP method.
            path: Path on the gateway.
            **kwargs: ``json``, ``content``, ``headers``, ``authenticated``.

        Returns:
            The response (status < 400).

        Raises:
            TransportError: No answer.
            ApiError: An error status.
        """
        return self._send(_Call(method, path, **kwargs))

    # ------------------------------------------------------------------ auth

    def health(self) -> bool:
        """Whether ``GET /healthz`` answers ok.

        Returns:
            True when the gateway is up.

        Raises:
            TransportError: The gateway is unreachable.
            ApiError: It answered with an error.
        """
        return self._run(self._health())

    def sign_in(
        self,
        wallet: Wallet,
        *,
        statement: str | None = SIWE_STATEMENT,
        expected_domain: str | None = None,
        expected_chain_id: int | None = None,
        expires_in_s: float | None = None,
    ) -> str:
        """Sign in with Ethereum (EIP-4361): nonce, sign, verify; keep the session token.

        The domain, URI and chain id come from ``GET /v1/auth/nonce``. A wallet only
        signs for the domain the user expects, so pass ``expected_domain`` (and
        ``expected_chain_id``) whenever the gateway is not fully trusted.

        Args:
            wallet: The signing wallet.
            statement: Line shown in the message.
            expected_domain: Refuse to sign for any other domain.
            expected_chain_id: Refuse to sign for any other chain.
            expires_in_s: Optional lifetime of the message (and so of the session).

        Returns:
            The session token (also kept in :attr:`session_token`; sent as the cookie).

        Raises:
            AuthError: The gateway refused the sign-in, or it asked for another domain or
                chain than expected (then nothing is signed).
            BadRequest: The gateway called the message malformed.
            TransportError: The gateway is unreachable.
        """
        flow = self._sign_in(wallet, statement, expected_domain, expected_chain_id, expires_in_s)
        return self._run(flow)

    def logout(self) -> None:
        """End the session on the gateway and forget the token (idempotent).

        Raises:
            TransportError: The gateway is unreachable.
        """
        self._run(self._logout())

    def me(self) -> Me:
        """Who the gateway thinks you are: address, stake, tier, credit, cap.

        Returns:
            The view.

        Raises:
            AuthError: Not signed in and no valid API key.
        """
        return self._run(self._me())

    def create_api_key(self, name: str = "", subnets: list[int] | None = None) -> NewApiKey:
        """Create an API key (needs a signed-in session, not a key).

        Args:
            name: Label, at most 64 characters.
            subnets: Subnet ids the key may bill; None for every subnet.

        Returns:
            The key with its secret (shown only this once).

        Raises:
            AuthError: Not signed in.
            ForbiddenError: Called with an API key.
            BadRequest: Name too long, too many keys.
        """
        return self._run(self._create_api_key(name, subnets))

    def list_api_keys(self) -> list[ApiKey]:
        """The signed-in address's API keys, without secrets.

        Returns:
            Keys, oldest first.

        Raises:
            AuthError: Not signed in.
            ForbiddenError: Called with an API key.
        """
        return self._run(self._list_api_keys())

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke one of your API keys; it stops working at once.

        Args:
            key_id: The key's id (not its secret).

        Raises:
            NotFound: No such key of yours.
            InvalidInput: An empty id or one with a slash.
        """
        self._run(self._revoke_api_key(key_id))

    # ------------------------------------------------------------------ subnets and credit

    def subnets(self) -> list[Subnet]:
        """Published subnets.

        Returns:
            The subnets the gateway lists.

        Raises:
            Overloaded: The gateway has no chain connection.
        """
        return self._run(self._subnets())

    def subnet(self, subnet_id: int) -> Subnet:
        """One subnet: price, minimum stake, model, features, CKKS parameters.

        Args:
            subnet_id: Its id.

        Returns:
            The subnet.

        Raises:
            NotFound: No such subnet.
        """
        return self._run(self._subnet(subnet_id))

    def submit_spending_authorization(self, signed: SignedSpendingAuthorization) -> str:
        """Have the gateway's operator put your signed spending cap on chain (it pays the gas).

        Args:
            signed: From :meth:`ChainClient.sign_spending_authorization`.

        Returns:
            The 0x-hex transaction hash.

        Raises:
            ForbiddenError: The authorisation is not the caller's own.
            BadRequest: Expired or out-of-range values.
            Overloaded: The gateway has no signer.
        """
        return self._run(self._submit_spending_authorization(signed))

    # ------------------------------------------------------------------ inference

    def predict(self, subnet: int | Subnet, rows: Any) -> Prediction:
        """Plaintext inference: probabilities for rows of features.

        Args:
            subnet: Subnet id or object.
            rows: Sequence of mappings feature name -> value, or a 2-D array-like of shape
                (n_rows, n_features) in the subnet's feature order (then the subnet is
                fetched once to name the features).

        Returns:
            Probabilities of shape (n_rows,), and the receipt id.

        Raises:
            InvalidInput: Malformed rows.
            InsufficientStake, PaymentRequired, RateLimited: From the gate and billing.
        """
        return self._run(self._predict(subnet, rows))

    def predict_proven(self, subnet: int | Subnet, row: Mapping[str, float]) -> ProvenPrediction:
        """Plaintext inference of one row with a zk proof of its logit (``?proof=true``).

        Check the proof with :meth:`ChainClient.verify_prediction_proof`: it reads the version's
        verifier and commitment from SubnetRegistry rather than trusting the gateway's word.

        Args:
            subnet: Subnet id or object.
            row: Feature name -> value.

        Returns:
            The prediction and its proof.

        Raises:
            InvalidInput: Malformed row, or the version has no verifier (422).
            Overloaded: The gateway's prover queue is full (503, retried after Retry-After).
            InsufficientStake, PaymentRequired, RateLimited: From the gate and billing.
        """
        return self._run(self._predict_proven(subnet, row))

    def predict_proven_batch(
        self, subnet: int | Subnet, rows: Sequence[Mapping[str, float]]
    ) -> ProvenBatch:
        """Plaintext inference of 2 to ``zk.BATCH_ROWS`` (24) rows with one zk batch proof.

        Only models with a batch circuit (3 features) can be proven this way; more rows than the
        circuit holds are refused (422), not split: send several requests.
        Check the proof with :meth:`ChainClient.verify_batch_proof`.

        Args:
            subnet: Subnet id or object.
            rows: Feature name -> value, per row.

        Returns:
            The predictions and their proof.

        Raises:
            InvalidInput: Malformed rows, too many rows, no batch circuit or verifier (422).
            Overloaded: The gateway's prover queue is full (503, retried after Retry-After).
            InsufficientStake, PaymentRequired, RateLimited: From the gate and billing.
        """
        return self._run(self._predict_proven_batch(subnet, rows))

    def predict_encrypted(
        self,
        subnet: int | Subnet,
        rows: Any,
        *,
        layout: str | None = None,
        params: str | None = None,
    ) -> Prediction:
        """Encrypted inference: the gateway never sees the features or the result.

        Makes a CKKS context for the subnet's advertised parameters (checked for 128-bit
        security here) and uploads its public part once (cached per parameters and
        layout, uploaded again if the gateway expired it); picks the layout by batch
        size (:func:`~clients.sdk.choose_layout`) unless one is given; splits the batch to
        fit the slots; encrypts, sends, decrypts the logits and applies the sigmoid.

        With ``params="compact"`` or ``"precise"`` it uses that named parameter set instead
        (``ckks_parameter_sets`` of the subnet): rows are standardised with the subnet's
        ``feature_standardisation``, encrypted one per ciphertext in the coefficient layout
        with a secret key kept in this client's memory (nothing is uploaded), at most 64 rows
        per request; ``compact`` sends about 13 KB up and 14 KB down per row.

        Args:
            subnet: Subnet id or object (an id costs one ``GET`` for the parameters).
            rows: As :meth:`predict`.
            layout: ``"row"``, ``"coeff"`` or ``"column"`` to force one; None picks.
            params: ``"compact"`` or ``"precise"`` for a named set; None for the subnet's
                default parameters (``ckks``).

        Returns:
            Probabilities and logits of shape (n_rows,), one receipt per request sent.

        Raises:
            InvalidInput: Malformed rows or an unknown layout.
            ServerError: The subnet offers no usable CKKS parameters, or a response does
                not decrypt.
            InsufficientStake, PaymentRequired, RateLimited, Overloaded: From the gateway.
        """
        return self._run(self._predict_encrypted(subnet, rows, layout, params))

    # ------------------------------------------------------------------ receipts

    def receipt(self, receipt_id: str) -> ReceiptRecord:
        """A receipt of yours, its batch and Merkle proof once recorded.

        Args:
            receipt_id: 0x-hex 32-byte id (``Prediction.receipt_ids``).

        Returns:
            The record.

        Raises:
            InvalidInput: Not a 0x-hex 32-byte id.
            NotFound: No such receipt of yours.
        """
        return self._run(self._receipt(receipt_id))

    def wait_for_receipt(
        self, receipt_id: str, *, timeout_s: float = 60.0, poll_s: float = 0.25
    ) -> ReceiptRecord:
        """Poll a receipt until its batch is recorded on chain (or failed).

        Args:
            receipt_id: 0x-hex id.
            timeout_s: Seconds to wait at most.
            poll_s: Seconds between polls.

        Returns:
            The record with status ``recorded`` or ``failed``.

        Raises:
            TwoPMError: Still not recorded after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.receipt(receipt_id)
            if record.status in ("recorded", "failed"):
                return record
            if time.monotonic() >= deadline:
                raise TwoPMError(
                    f"receipt {receipt_id} is still {record.status} after {timeout_s:g} s"
                )
            time.sleep(poll_s)

    def verify_receipt(self, receipt: ReceiptRecord | str, chain: ChainClient) -> ReceiptCheck:
        """Check a receipt's Merkle proof against the batch root recorded on chain.

        The leaf is recomputed here from the receipt's fields (never taken from the
        gateway), the root is read from ``InferenceLedger.batchRoot``, the proof is
        checked locally (OpenZeppelin ``MerkleProof`` rules) and by the contract's own
        ``verifyReceipt``; both must pass.

        Args:
            receipt: A record from :meth:`receipt`, or a receipt id to fetch.
            chain: Any :class:`ChainClient` of the gateway's chain (read-only is enough).

        Returns:
            The outcome (truthy when valid), with the reason when not.

        Raises:
            ChainError: The chain is unreachable.
        """
        record = self.receipt(receipt) if isinstance(receipt, str) else receipt
        return check_receipt(record, chain)


class AsyncGatewayClient(_Protocol):
    """The asyncio twin of :class:`GatewayClient`: same methods, awaited.

    Encryption and decryption run on the event loop's thread (a few ms per ciphertext);
    chain reads of :meth:`verify_receipt` run in a worker thread.

    Args:
        base_url: The gateway's URL.
        api_key: An API key, or None.
        session_token: A session token from an earlier sign-in, or None.
        timeout_s: Seconds allowed for each request.
        transport: An httpx async transport to use (tests plug faults in here).
        max_contexts: Most CKKS contexts kept.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_contexts: int = 8,
    ) -> None:
        super().__init__(base_url, api_key, session_token, max_contexts)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                json=call.json,
                content=call.content,
                headers=self._headers(call),
            )
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, self.base_url + call.path) from exc
        finally:
            self._http.cookies.clear()
        return self._checked(response)

    async def _run(self, flow: _Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    response = await self._send(call)
                except TwoPMError as exc:
                    call = flow.throw(exc)
                else:
                    call = flow.send(response)
        except StopIteration as stop:
            return cast(T, stop.value)

    async def health(self) -> bool:
        """Async :meth:`GatewayClient.health`."""
        return await self._run(self._health())

    async def sign_in(
        self,
        wallet: Wallet,
        *,
        statement: str | None = SIWE_STATEMENT,
        expected_domain: str | None = None,
        expected_chain_id: int | None = None,
        expires_in_s: float | None = None,
    ) -> str:
        """Async :meth:`GatewayClient.sign_in`."""
        flow = self._sign_in(wallet, statement, expected_domain, expected_chain_id, expires_in_s)
        return await self._run(flow)

    async def logout(self) -> None:
        """Async :meth:`GatewayClient.logout`."""
        await self._run(self._logout())

    async def me(self) -> Me:
        """Async :meth:`GatewayClient.me`."""
        return await self._run(self._me())

    async def create_api_key(self, name: str = "", subnets: list[int] | None = None) -> NewApiKey:
        """Async :meth:`GatewayClient.create_api_key`."""
        return await self._run(self._create_api_key(name, subnets))

    async def list_api_keys(self) -> list[ApiKey]:
        """Async :meth:`GatewayClient.list_api_keys`."""
        return await self._run(self._list_api_keys())

    async def revoke_api_key(self, key_id: str) -> None:
        """Async :meth:`GatewayClient.revoke_api_key`."""
        await self._run(self._revoke_api_key(key_id))

    async def subnets(self) -> list[Subnet]:
        """Async :meth:`GatewayClient.subnets`."""
        return await self._run(self._subnets())

    async def subnet(self, subnet_id: int) -> Subnet:
        """Async :meth:`GatewayClient.subnet`."""
        return await self._run(self._subnet(subnet_id))

    async def submit_spending_authorization(self, signed: SignedSpendingAuthorization) -> str:
        """Async :meth:`GatewayClient.submit_spending_authorization`."""
        return await self._run(self._submit_spending_authorization(signed))

    async def predict(self, subnet: int | Subnet, rows: Any) -> Prediction:
        """Async :meth:`GatewayClient.predict`."""
        return await self._run(self._predict(subnet, rows))

    async def predict_proven(
        self, subnet: int | Subnet, row: Mapping[str, float]
    ) -> ProvenPrediction:
        """Async :meth:`GatewayClient.predict_proven`."""
        return await self._run(self._predict_proven(subnet, row))

    async def predict_proven_batch(
        self, subnet: int | Subnet, rows: Sequence[Mapping[str, float]]
    ) -> ProvenBatch:
        """Async :meth:`GatewayClient.predict_proven_batch`."""
        return await self._run(self._predict_proven_batch(subnet, rows))

    async def predict_encrypted(
        self,
        subnet: int | Subnet,
        rows: Any,
        *,
        layout: str | None = None,
        params: str | None = None,
    ) -> Prediction:
        """Async :meth:`GatewayClient.predict_encrypted`."""
        return await self._run(self._predict_encrypted(subnet, rows, layout, params))

    async def receipt(self, receipt_id: str) -> ReceiptRecord:
        """Async :meth:`GatewayClient.receipt`."""
        return await self._run(self._receipt(receipt_id))

    async def wait_for_receipt(
        self, receipt_id: str, *, timeout_s: float = 60.0, poll_s: float = 0.25
    ) -> ReceiptRecord:
        """Async :meth:`GatewayClient.wait_for_receipt`."""
        deadline = time.monotonic() + timeout_s
        while True:
            record = await self.receipt(receipt_id)
            if record.status in ("recorded", "failed"):
                return record
            if time.monotonic() >= deadline:
                raise TwoPMError(
                    f"receipt {receipt_id} is still {record.status} after {timeout_s:g} s"
                )
            await asyncio.sleep(poll_s)

    async def verify_receipt(
        self, receipt: ReceiptRecord | str, chain: ChainClient
    ) -> ReceiptCheck:
        """Async :meth:`GatewayClient.verify_receipt` (chain reads in a worker thread)."""
        record = await self.receipt(receipt) if isinstance(receipt, str) else receipt
        return await asyncio.to_thread(check_receipt, record, chain)


def _session_cookie(response: httpx.Response) -> str | None:
    """The session token from ``Set-Cookie`` (httpx's jar may refuse a Secure cookie on http)."""
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(header)
        except Exception:
            continue
        if SESSION_COOKIE in cookie and cookie[SESSION_COOKIE].value:
            return cookie[SESSION_COOKIE].value
    return None


def _take_answer(
    client: Any,
    response: httpx.Response,
    part: slice,
    logits: npt.NDArray[np.float64],
    receipts: list[str],
) -> None:
    """Decrypt one encrypted answer into ``logits[part]`` and keep its receipt id.

    Args:
        client: What holds the secret key: a ``ckks.ClientContext`` or ``ckks.SetClient``
            (anything with ``decrypt_logits(body, expected_rows=...)``).
        response: The answer of ``POST /v1/subnets/{id}/infer``.
        part: The rows the request carried.
        logits: float64 (n_rows,), filled in place.
        receipts: Receipt ids so far, appended to.

    Raises:
        ServerError: The answer does not decrypt, or has another row count.
    """
    try:
        logits[part] = client.decrypt_logits(response.content, expected_rows=part.stop - part.start)
    except CkksError as exc:
        raise ServerError(response.status_code, "Undecryptable response", str(exc)) from exc
    receipt_id = response.headers.get(RECEIPT_HEADER)
    if receipt_id:
        receipts.append(receipt_id)
