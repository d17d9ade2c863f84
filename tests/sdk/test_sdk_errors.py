"""The error boundary: problem bodies by status, and transport faults injected at httpx's seam."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import clients.sdk as sdk
from clients.sdk import (
    ApiError,
    AsyncGatewayClient,
    AuthError,
    BadRequest,
    ForbiddenError,
    GatewayClient,
    InsufficientStake,
    NotFound,
    Overloaded,
    PaymentRequired,
    RateLimited,
    ServerError,
    TransportError,
    TwoPMError,
    Wallet,
)
from clients.sdk._exceptions import error_from_response


def test_the_sdk_exports_exactly_its_public_names() -> None:
    assert sorted(sdk.__all__) == sorted(
        [
            "ApiError",
            "ApiKey",
            "AsyncGatewayClient",
            "AuthError",
            "BadRequest",
            "BatchInfo",
            "ChainClient",
            "ChainError",
            "CreditState",
            "ForbiddenError",
            "GatewayClient",
            "InsufficientStake",
            "InvalidInput",
            "Me",
            "NewApiKey",
            "NotFound",
            "NothingToWithdraw",
            "Overloaded",
            "PaymentRequired",
            "Prediction",
            "ProvenBatch",
            "ProvenPrediction",
            "RateLimited",
            "ReceiptCheck",
            "ReceiptRecord",
            "ServerError",
            "SignInRejected",
            "SignedSpendingAuthorization",
            "StakeWithdrawal",
            "Subnet",
            "TooEarly",
            "TransactionReverted",
            "TransportError",
            "TwoPMError",
            "TxResult",
            "Wallet",
            "WalletError",
            "choose_layout",
        ]
    )
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_every_sdk_error_is_a_twopm_error() -> None:
    errors = [getattr(sdk, n) for n in sdk.__all__ if n.endswith(("Error", "Required", "Limited"))]
    errors += [sdk.BadRequest, sdk.NotFound, sdk.Overloaded, sdk.InsufficientStake]
    errors += [sdk.InvalidInput, sdk.TransactionReverted, sdk.TooEarly, sdk.NothingToWithdraw]
    assert all(issubclass(e, TwoPMError) for e in errors)


def _problem(
    status: int, slug: str = "x", headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {
        "type": f"https://2pm.dev/problems/{slug}",
        "title": "T",
        "status": status,
        "detail": "d",
        **extra,
    }
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequest),
        (401, AuthError),
        (402, PaymentRequired),
        (403, ForbiddenError),
        (404, NotFound),
        (405, BadRequest),
        (409, BadRequest),
        (413, BadRequest),
        (422, BadRequest),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, Overloaded),
    ],
)
def test_a_problem_maps_to_the_error_of_its_status(status: int, expected: type[ApiError]) -> None:
    error = error_from_response(_problem(status))
    assert type(error) is expected
    assert error.status_code == status and error.detail == "d" and error.title == "T"
    assert str(error) == f"{status} T: d"


def test_a_403_for_stake_carries_the_required_and_actual_stake() -> None:
    error = error_from_response(
        _problem(403, "insufficient-stake", required_stake_wei="1000", actual_stake_wei="7")
    )
    assert isinstance(error, InsufficientStake)
    assert (error.required_stake_wei, error.actual_stake_wei) == (1000, 7)


def test_a_refused_sign_in_says_why() -> None:
    error = error_from_response(_problem(401, "sign-in-rejected", reason="nonce-reused"))
    assert isinstance(error, sdk.SignInRejected) and isinstance(error, AuthError)
    assert error.reason == "nonce-reused"
    assert type(error_from_response(_problem(401, "not-authenticated"))) is AuthError


def test_a_problem_type_that_does_not_fit_its_status_maps_by_status() -> None:
    assert type(error_from_response(_problem(404, "insufficient-stake"))) is NotFound
    assert type(error_from_response(_problem(403, "never-heard-of-it"))) is ForbiddenError


def test_a_402_says_how_much_is_missing() -> None:
    error = error_from_response(_problem(402, "payment-required", missing_wei="42"))
    assert isinstance(error, PaymentRequired) and error.missing_wei == 42


def test_retry_after_comes_from_the_header_then_the_body_then_one_second() -> None:
    assert error_from_response(_problem(429, headers={"Retry-After": "7"})).retry_after_s == 7  # type: ignore[attr-defined]
    assert error_from_response(_problem(503, retry_after_s=3)).retry_after_s == 3  # type: ignore[attr-defined]
    bad = _problem(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert error_from_response(bad).retry_after_s == 1.0  # type: ignore[attr-defined]


def test_an_error_body_that_is_not_a_problem_still_maps_by_status() -> None:
    error = error_from_response(httpx.Response(502, content=b"<html>Bad gateway</html>"))
    assert isinstance(error, ServerError) and "Bad gateway" in error.detail
    assert isinstance(error_from_response(httpx.Response(404, content=b"")), NotFound)


# ----------------------------------------------------------------------------- transport faults

FAULTS: list[Callable[[httpx.Request], httpx.HTTPError]] = [
    lambda r: httpx.ConnectError("connection refused", request=r),
    lambda r: httpx.ConnectTimeout("connect timed out", request=r),
    lambda r: httpx.ReadTimeout("read timed out", request=r),
    lambda r: httpx.WriteError("broken pipe", request=r),
    lambda r: httpx.RemoteProtocolError("peer closed connection", request=r),
    lambda r: httpx.ReadError("reset by peer", request=r),
    lambda r: httpx.PoolTimeout("pool exhausted", request=r),
    lambda r: httpx.ProxyError("proxy refused", request=r),
    lambda r: httpx.UnsupportedProtocol("ftp", request=r),
    lambda r: httpx.DecodingError("bad gzip", request=r),
    lambda r: httpx.TooManyRedirects("loop", request=r),
]


def _faulty(fault: Callable[[httpx.Request], httpx.HTTPError]) -> GatewayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise fault(request)

    return GatewayClient(
        "http://gw.invalid", api_key="twopm_x_y", transport=httpx.MockTransport(handler)
    )


CALLS: dict[str, Callable[[GatewayClient], object]] = {
    "health": lambda c: c.health(),
    "sign_in": lambda c: c.sign_in(Wallet.create()),
    "me": lambda c: c.me(),
    "create_api_key": lambda c: c.create_api_key("k"),
    "list_api_keys": lambda c: c.list_api_keys(),
    "revoke_api_key": lambda c: c.revoke_api_key("abc"),
    "subnets": lambda c: c.subnets(),
    "subnet": lambda c: c.subnet(1),
    "predict": lambda c: c.predict(1, [{"a": 1.0}]),
    "predict_encrypted": lambda c: c.predict_encrypted(1, [[1.0]]),
    "receipt": lambda c: c.receipt("0x" + "ab" * 32),
}


@pytest.mark.parametrize(
    "fault", FAULTS, ids=lambda f: type(f(httpx.Request("GET", "http://x"))).__name__
)
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_no_httpx_error_escapes_untranslated(
    fault: Callable[[httpx.Request], httpx.HTTPError], call: Callable[[GatewayClient], object]
) -> None:
    with _faulty(fault) as client, pytest.raises(TransportError) as caught:
        call(client)
    assert isinstance(caught.value.__cause__, httpx.HTTPError)
    assert "http://gw.invalid/" in str(caught.value)


def test_a_success_that_is_not_json_is_a_server_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>proxy</html>"))
    with (
        GatewayClient("http://gw.invalid", transport=transport) as client,
        pytest.raises(ServerError),
    ):
        client.subnets()


def test_a_success_with_unexpected_fields_is_a_server_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"subnets": [{"id": "x"}]}))
    with (
        GatewayClient("http://gw.invalid", transport=transport) as client,
        pytest.raises(ServerError),
    ):
        client.subnets()


ASYNC_CALLS: dict[str, Callable[[AsyncGatewayClient], Awaitable[object]]] = {
    "health": lambda c: c.health(),
    "sign_in": lambda c: c.sign_in(Wallet.create()),
    "me": lambda c: c.me(),
    "subnets": lambda c: c.subnets(),
    "predict_encrypted": lambda c: c.predict_encrypted(1, [[1.0]]),
    "receipt": lambda c: c.receipt("0x" + "ab" * 32),
}


@pytest.mark.parametrize(
    "fault", FAULTS[:4], ids=lambda f: type(f(httpx.Request("GET", "http://x"))).__name__
)
@pytest.mark.parametrize("call", ASYNC_CALLS.values(), ids=ASYNC_CALLS.keys())
def test_no_httpx_error_escapes_the_async_client_untranslated(
    fault: Callable[[httpx.Request], httpx.HTTPError],
    call: Callable[[AsyncGatewayClient], Awaitable[object]],
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise fault(request)

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        async with AsyncGatewayClient("http://gw.invalid", transport=transport) as client:
            await call(client)

    with pytest.raises(TransportError) as caught:
        asyncio.run(run())
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (40, "40 s"),
        (60, "1 min"),
        (545, "9 min 5 s"),
        (3600, "1 h"),
        (2 * 3600 + 13 * 60 + 59, "2 h 13 min"),
        (3 * 86400 + 4 * 3600 + 7, "3 d 4 h"),
        (-5, "0 s"),
    ],
)
def test_a_wait_reads_in_its_two_largest_units(seconds: int, text: str) -> None:
    from clients.sdk._exceptions import time_left

    assert time_left(seconds) == text


def test_a_time_is_shown_in_utc_to_the_minute() -> None:
    from clients.sdk._exceptions import utc_time

    assert utc_time(1_796_576_520) == "2026-12-06 17:02 UTC"


# ----------------------------------------------------------------------------- proven answers

_PROOF_FIELDS: dict[str, Any] = {
    "proof": "0x" + "11" * 256,
    "instances": ["0x1", "0x2", "0x3"],
    "verifier": "0x" + "22" * 20,
    "model_commitment": "0x7",
    "model_version": 4,
    "proving_s": 1.5,
}
_PROVEN_ONE: dict[str, Any] = {
    "probabilities": [0.25],
    "logits": [-1.0986],
    "proven_logit": -1.0986,
    **_PROOF_FIELDS,
}
_PROVEN_BATCH: dict[str, Any] = {
    "probabilities": [0.25, 0.5],
    "logits": [-1.0986, 0.0],
    "proven_logits": [-1.0986, 0.0],
    "logit_words": ["0x10", "0x0"],
    "pad_logit_word": "0x3",
    **_PROOF_FIELDS,
}
_ROW = {"a": 1.0}
PROVEN_CALLS: dict[str, tuple[dict[str, Any], Callable[[GatewayClient], Any]]] = {
    "one": (_PROVEN_ONE, lambda c: c.predict_proven(3, _ROW)),
    "batch": (_PROVEN_BATCH, lambda c: c.predict_proven_batch(3, [_ROW, _ROW])),
}
# (field, bad value or None to drop it, the error the SDK wraps)
MALFORMED_PROOF_FIELDS: list[tuple[str, Any, type[Exception]]] = [
    ("proof", None, KeyError),
    ("proof", "0xnothex", ValueError),
    ("instances", None, KeyError),
    ("instances", ["0xzz"], ValueError),
    ("instances", 5, TypeError),
    ("verifier", None, KeyError),
    ("model_commitment", "seven", ValueError),
    ("model_version", "four", ValueError),
    ("model_version", None, KeyError),
    ("proving_s", "slow", ValueError),
]


def _proven_client(body: Any) -> GatewayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("proof") == "true"
        return httpx.Response(200, json=body, headers={"X-Receipt-Id": "0x" + "ab" * 32})

    return GatewayClient(
        "http://gw.invalid", api_key="twopm_x_y", transport=httpx.MockTransport(handler)
    )


@pytest.mark.parametrize("kind", PROVEN_CALLS)
def test_a_well_formed_proven_answer_is_read_field_by_field(kind: str) -> None:
    body, call = PROVEN_CALLS[kind]
    with _proven_client(body) as client:
        proven = call(client)
    assert proven.proof == b"\x11" * 256
    assert proven.instances == (1, 2, 3)
    assert proven.verifier == "0x" + "22" * 20
    assert (proven.model_commitment, proven.model_version, proven.proving_s) == (7, 4, 1.5)
    assert proven.receipt_id == "0x" + "ab" * 32


@pytest.mark.parametrize("kind", PROVEN_CALLS)
@pytest.mark.parametrize(
    ("name", "bad", "cause"),
    MALFORMED_PROOF_FIELDS,
    ids=[f"{n}-{'missing' if b is None else b}" for n, b, _ in MALFORMED_PROOF_FIELDS],
)
def test_a_proven_answer_with_a_malformed_proof_field_is_a_server_error(
    kind: str, name: str, bad: Any, cause: type[Exception]
) -> None:
    body, call = PROVEN_CALLS[kind]
    body = {k: v for k, v in body.items() if k != name} | ({} if bad is None else {name: bad})
    with _proven_client(body) as client, pytest.raises(ServerError) as caught:
        call(client)
    assert caught.value.status_code == 200 and caught.value.title == "Unexpected response"
    assert caught.value.detail.startswith("/v1/subnets/3/predict?proof=true: ")
    assert isinstance(caught.value.__cause__, cause)


def test_a_proven_batch_with_fewer_proven_logits_than_rows_is_a_server_error() -> None:
    with (
        _proven_client(_PROVEN_BATCH | {"logit_words": ["0x10"]}) as client,
        pytest.raises(ServerError, match="1 proven logits for 2 rows"),
    ):
        client.predict_proven_batch(3, [_ROW, _ROW])
