"""The signer process over real HTTP, with a real anvil: what it signs and what it refuses."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from signer_support import LEDGER_DOMAIN, SignerProcess, create_subnet_tx, ledger_tx, voucher

from contracts.deploy import Deployment
from signer import Limits, SignerRefused
from signer._auth import sign_request

PROBLEM = "application/problem+json"


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def post(
    signer: SignerProcess,
    path: str,
    body: Any,
    *,
    caller: str = "tester",
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    secret: bytes | None = None,
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    auth = sign_request(secret or signer.secrets[caller], caller, "POST", path, content)
    auth.update(headers or {})
    return httpx.post(f"{signer.url}{path}", content=content, headers=auth, timeout=10)


def sign_body(tx: dict[str, Any], idem: str | None = None) -> dict[str, Any]:
    return {"idempotency_key": idem or key(), "transaction": tx}


def assert_refused(
    signer: SignerProcess, response: httpx.Response, status: int, reason: str, nonce_before: int
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["reason"] == reason
    assert problem["type"] == f"https://2pm.dev/problems/signer/{reason}"
    assert problem["status"] == status
    assert problem["detail"]
    last = signer.audit_entries()[-1]
    assert last["outcome"] == "refused"
    assert last["reason"] == reason
    assert signer.client().next_nonce() == nonce_before  # nothing was signed


# -- an allowed call ---------------------------------------------------------------------------


def test_typed_data_in_an_allowed_domain_is_signed_by_the_operator(
    signer: SignerProcess, deployment: Deployment
) -> None:
    typed: dict[str, Any] = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "OperatorVoucher": [{"name": "amount", "type": "uint256"}],
        },
        "primaryType": "OperatorVoucher",
        "domain": {
            "name": LEDGER_DOMAIN,
            "version": "1",
            "chainId": deployment.chain_id,
            "verifyingContract": deployment.addresses["InferenceLedger"],
        },
        "message": {"amount": 5},
    }
    with signer.client() as client:
        signed = client.sign_typed_data(typed, key())
        recovered = Account.recover_message(
            encode_typed_data(full_message=typed), signature=signed.signature
        )
        assert recovered == client.address()
        other_types = {
            "EIP712Domain": typed["types"]["EIP712Domain"],
            "Other": [{"name": "amount", "type": "uint256"}],
        }
        other = dict(typed, primaryType="Other", types=other_types)
        with pytest.raises(SignerRefused) as exc:
            client.sign_typed_data(other, key())
        assert exc.value.reason == "typed_data_type_not_allowed"
        foreign = dict(typed, domain={**typed["domain"], "name": "Permit2"})
        with pytest.raises(SignerRefused) as exc:
            client.sign_typed_data(foreign, key())
        assert exc.value.reason == "typed_data_domain_not_allowed"
        assert exc.value.status == 403


# -- refusals ----------------------------------------------------------------------------------


def _transaction_refusals(deployment: Deployment) -> dict[str, tuple[dict[str, Any], int, str]]:
    ledger = deployment.contract("InferenceLedger")
    owner_only = ledger.functions.setProtocolFee(0)._encode_transaction_data()
    return {
        "wrong chain": (ledger_tx(deployment, chainId=534352), 403, "wrong_chain"),
        "unknown contract": (
            ledger_tx(deployment, to=deployment.addresses["StakingVault"]),
            403,
            "unknown_contract",
        ),
        "unknown selector": (ledger_tx(deployment, data=owner_only), 403, "unknown_function"),
        "truncated calldata": (
            ledger_tx(deployment, data=ledger_tx(deployment)["data"][:40]),
            400,
            "malformed_calldata",
        ),
        "value over cap": (ledger_tx(deployment, value=1001), 403, "value_over_cap"),
        "fee over cap": (
            ledger_tx(deployment, maxFeePerGas=100 * 10**9 + 1),
            403,
            "fee_over_cap",
        ),
        "priority fee over max fee": (
            ledger_tx(deployment, maxPriorityFeePerGas=3 * 10**9),
            403,
            "fee_over_cap",
        ),
        "gas over cap": (ledger_tx(deployment, gas=3_000_001), 403, "gas_over_cap"),
        "a nonce in the request": (ledger_tx(deployment, nonce=7), 400, "malformed_body"),
        "contract creation": (ledger_tx(deployment, to=None), 400, "unsupported_transaction"),
        "legacy gas price": (ledger_tx(deployment, gasPrice=10**9), 400, "unsupported_transaction"),
        "an access list": (
            ledger_tx(
                deployment,
                accessList=[{"address": deployment.addresses["StakingVault"], "storageKeys": []}],
            ),
            400,
            "unsupported_transaction",
        ),
        "a foreign sender": (
            ledger_tx(deployment, **{"from": deployment.deployer}),
            400,
            "malformed_body",
        ),
        "a negative value": (ledger_tx(deployment, value=-1), 400, "malformed_body"),
    }


REFUSAL_NAMES = [
    "wrong chain",
    "unknown contract",
    "unknown selector",
    "truncated calldata",
    "value over cap",
    "fee over cap",
    "priority fee over max fee",
    "gas over cap",
    "a nonce in the request",
    "contract creation",
    "legacy gas price",
    "an access list",
    "a foreign sender",
    "a negative value",
]


@pytest.mark.parametrize("name", REFUSAL_NAMES)
def test_sign_transaction_refuses_a_call_outside_the_policy(
    signer: SignerProcess, deployment: Deployment, name: str
) -> None:
    tx, status, reason = _transaction_refusals(deployment)[name]
    before = signer.client().next_nonce()
    response = post(signer, "/v1/sign/transaction", sign_body(tx))
    assert_refused(signer, response, status, reason, before)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"idempotency_key": "short", "transaction": {}}',
        b'{"idempotency_key": "long-enough-key", "transaction": "x"}',
        b'{"idempotency_key": "long-enough-key", "transaction": {}, "extra": 1}',
    ],
    ids=["not json", "not an object", "short key", "transaction not an object", "unknown field"],
)
def test_sign_transaction_refuses_a_malformed_body(signer: SignerProcess, raw: bytes) -> None:
    before = signer.client().next_nonce()
    response = post(signer, "/v1/sign/transaction", None, raw=raw)
    assert_refused(signer, response, 400, "malformed_body", before)


def test_sign_transaction_refuses_an_oversize_body_with_413(
    signer: SignerProcess, deployment: Deployment
) -> None:
    before = signer.client().next_nonce()
    tx = ledger_tx(deployment, data="0x" + "00" * 70_000)
    response = post(signer, "/v1/sign/transaction", sign_body(tx))
    assert_refused(signer, response, 413, "body_too_large", before)
    refused = [e for e in signer.audit_entries() if e.get("outcome") == "refused"]
    assert refused[-1]["caller_claimed"] == "tester"


def test_sign_transaction_refuses_a_bad_signature(
    signer: SignerProcess, deployment: Deployment
) -> None:
    before = signer.client().next_nonce()
    response = post(
        signer, "/v1/sign/transaction", sign_body(ledger_tx(deployment)), secret=b"x" * 32
    )
    assert_refused(signer, response, 401, "bad_auth", before)


def test_sign_transaction_refuses_a_body_changed_after_signing(
    signer: SignerProcess, deployment: Deployment
) -> None:
    before = signer.client().next_nonce()
    body = json.dumps(sign_body(ledger_tx(deployment))).encode()
    headers = sign_request(signer.secrets["tester"], "tester", "POST", "/v1/sign/transaction", body)
    tampered = body.replace(b'"gas": 200000', b'"gas": 200001')
    response = httpx.post(
        f"{signer.url}/v1/sign/transaction", content=tampered, headers=headers, timeout=10
    )
    assert_refused(signer, response, 401, "bad_auth", before)


def test_sign_transaction_refuses_missing_authentication(
    signer: SignerProcess, deployment: Deployment
) -> None:
    before = signer.client().next_nonce()
    response = httpx.post(
        f"{signer.url}/v1/sign/transaction", json=sign_body(ledger_tx(deployment)), timeout=10
    )
    assert_refused(signer, response, 401, "bad_auth", before)


def test_sign_transaction_refuses_an_unknown_caller(
    signer: SignerProcess, deployment: Deployment
) -> None:
    before = signer.client().next_nonce()
    response = post(
        signer,
        "/v1/sign/transaction",
        sign_body(ledger_tx(deployment)),
        caller="mallory",
        secret=signer.secrets["tester"],
    )
    assert_refused(signer, response, 401, "unknown_caller", before)


@pytest.mark.parametrize("skew_s", [-120, 120])
def test_sign_transaction_refuses_a_stale_timestamp(
    signer: SignerProcess, deployment: Deployment, skew_s: int
) -> None:
    before = signer.client().next_nonce()
    body = json.dumps(sign_body(ledger_tx(deployment))).encode()
    headers = sign_request(
        signer.secrets["tester"],
        "tester",
        "POST",
        "/v1/sign/transaction",
        body,
        timestamp=int(time.time()) + skew_s,
    )
    response = httpx.post(
        f"{signer.url}/v1/sign/transaction", content=body, headers=headers, timeout=10
    )
    assert_refused(signer, response, 401, "stale_timestamp", before)


def test_sign_transaction_refuses_a_replayed_request(
    signer: SignerProcess, deployment: Deployment
) -> None:
    body = json.dumps(sign_body(ledger_tx(deployment))).encode()
    headers = sign_request(signer.secrets["tester"], "tester", "POST", "/v1/sign/transaction", body)
    first = httpx.post(f"{signer.url}/v1/sign/transaction", content=body, headers=headers)
    assert first.status_code == 200, first.text
    before = signer.client().next_nonce()
    replay = httpx.post(f"{signer.url}/v1/sign/transaction", content=body, headers=headers)
    assert_refused(signer, replay, 401, "replayed_request", before)


def test_a_signature_for_one_path_is_refused_on_another(signer: SignerProcess) -> None:
    headers = sign_request(signer.secrets["tester"], "tester", "GET", "/v1/policy", b"")
    response = httpx.get(f"{signer.url}/v1/address", headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "bad_auth"


def test_reads_need_authentication_but_health_does_not(signer: SignerProcess) -> None:
    assert httpx.get(f"{signer.url}/healthz").json()["status"] == "ok"
    response = httpx.get(f"{signer.url}/v1/address")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


def test_an_unknown_route_is_a_problem_not_a_500(signer: SignerProcess) -> None:
    response = httpx.get(f"{signer.url}/v1/keys")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["reason"] == "not_found"


# -- idempotency -------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_very_same_signature(
    signer: SignerProcess, deployment: Deployment
) -> None:
    idem = key()
    with signer.client() as client:
        first = client.sign_transaction(ledger_tx(deployment), idem)
        second = client.sign_transaction(ledger_tx(deployment), idem)
        assert second == first
        assert client.next_nonce() == first.nonce + 1
    outcomes = [e["outcome"] for e in signer.audit_entries() if e.get("idempotency_key") == idem]
    assert outcomes == ["signed", "replayed"]


def test_the_same_idempotency_key_with_another_body_is_a_conflict(
    signer: SignerProcess, deployment: Deployment
) -> None:
    idem = key()
    with signer.client() as client:
        client.sign_transaction(ledger_tx(deployment), idem)
        before = client.next_nonce()
    response = post(
        signer, "/v1/sign/transaction", sign_body(ledger_tx(deployment, gas=210_000), idem)
    )
    assert_refused(signer, response, 409, "idempotency_conflict", before)


def test_idempotency_keys_belong_to_their_caller(
    signer: SignerProcess, deployment: Deployment
) -> None:
    idem = key()
    with signer.client("tester") as tester, signer.client("recorder") as recorder:
        mine = tester.sign_transaction(ledger_tx(deployment), idem)
        theirs = recorder.sign_transaction(ledger_tx(deployment), idem)
        assert theirs.nonce == mine.nonce + 1
        assert recorder.record(key()) is None


# -- rolling windows ----------------------------------------------------------------------------


def test_rolling_caps_refuse_once_the_hour_or_the_value_window_is_full(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    limits = Limits(
        max_value_per_tx_wei=1000,
        max_value_per_window_wei=1500,
        value_window_s=3600,
        max_gas_per_tx=3_000_000,
        max_fee_per_gas_wei=100 * 10**9,
        max_tx_per_hour=3,
        max_typed_data_per_hour=1,
    )
    signer = make_signer(limits=limits)
    with signer.client() as client:
        client.sign_transaction(ledger_tx(deployment, value=1000), key())
        response = post(signer, "/v1/sign/transaction", sign_body(ledger_tx(deployment, value=600)))
        assert_refused(signer, response, 429, "window_value_over_cap", 1)
        client.sign_transaction(ledger_tx(deployment, value=500), key())
        client.sign_transaction(ledger_tx(deployment), key())
        response = post(signer, "/v1/sign/transaction", sign_body(ledger_tx(deployment)))
        assert_refused(signer, response, 429, "rate_limited", 3)
        client.sign_typed_data(voucher(deployment, 1, LEDGER_DOMAIN), key())
        typed = {"idempotency_key": key(), "typed_data": voucher(deployment, 2, LEDGER_DOMAIN)}
        response = post(signer, "/v1/sign/typed-data", typed)
        assert_refused(signer, response, 429, "rate_limited", 3)


# -- nonces -------------------------------------------------------------------------------------


def test_nonce_sync_raises_the_nonce_but_never_lowers_it(
    signer: SignerProcess, deployment: Deployment
) -> None:
    with signer.client() as client:
        current = client.next_nonce()
        assert client.sync_nonce(current + 5) == current + 5
        assert client.sync_nonce(0) == current + 5
        signed = client.sign_transaction(ledger_tx(deployment), key())
        assert signed.nonce == current + 5
    entries = [e for e in signer.audit_entries() if e["event"] == "nonce_sync"]
    assert [(e["before"], e["after"]) for e in entries[-2:]] == [
        (current, current + 5),
        (current + 5, current + 5),
    ]


def test_create_subnet_calls_are_allowed_for_the_operator(
    signer: SignerProcess, deployment: Deployment
) -> None:
    with signer.client() as client:
        signed = client.sign_transaction(create_subnet_tx(deployment, "s"), key())
    assert Account.recover_transaction(signed.raw_transaction) == signed.sender


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/sign/typed-data", {"idempotency_key": "typed-00000001", "typed_data": "x"}),
        (
            "/v1/sign/typed-data",
            {
                "idempotency_key": "typed-00000002",
                "typed_data": {"types": {}, "primaryType": "X", "domain": {}, "message": {}},
            },
        ),
        ("/v1/nonce/sync", {"confirmed_nonce": -1}),
        ("/v1/nonce/sync", {"confirmed_nonce": 1, "force": True}),
    ],
    ids=["typed data not an object", "typed data not EIP-712", "negative nonce", "unknown field"],
)
def test_other_routes_refuse_a_malformed_body(
    signer: SignerProcess, path: str, body: dict[str, Any]
) -> None:
    before = signer.client().next_nonce()
    assert_refused(signer, post(signer, path, body), 400, "malformed_body", before)


def test_a_record_that_does_not_exist_is_a_404_problem(signer: SignerProcess) -> None:
    path = "/v1/records/no-such-key-0001"
    headers = sign_request(signer.secrets["tester"], "tester", "GET", path, b"")
    response = httpx.get(f"{signer.url}{path}", headers=headers)
    assert response.status_code == 404
    assert response.json()["reason"] == "not_found"
    assert signer.audit_entries()[-1]["reason"] == "not_found"


def test_a_caller_with_an_allow_list_may_sign_only_those_functions(
    signer: SignerProcess, deployment: Deployment
) -> None:
    with signer.client("settler") as settler:
        signed = settler.sign_transaction(ledger_tx(deployment), key())
        assert Account.recover_transaction(signed.raw_transaction) == signed.sender
    before = signer.client().next_nonce()
    response = post(
        signer, "/v1/sign/transaction", sign_body(create_subnet_tx(deployment, "x")),
        caller="settler",
    )  # fmt: skip
    assert_refused(signer, response, 403, "caller_not_allowed", before)


def test_the_audit_route_gives_the_newest_entries_newest_first_and_is_audited_itself(
    signer: SignerProcess, deployment: Deployment
) -> None:
    with signer.client() as client:
        signed = client.sign_transaction(ledger_tx(deployment), key())
        answer = client.audit()
    entries = answer["entries"]
    on_disk = signer.audit_entries()
    assert answer["head_seq"] == entries[0]["seq"] == on_disk[-2]["seq"]
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)
    assert entries[0]["outcome"] == "signed" and entries[0]["tx_hash"] == signed.hash
    assert "sig" not in entries[0] and "prev" not in entries[0]
    assert on_disk[-1]["event"] == "audit" and on_disk[-1]["outcome"] == "ok"
    assert len(entries) <= 50


def test_the_audit_route_refuses_an_unauthenticated_caller(signer: SignerProcess) -> None:
    response = httpx.get(f"{signer.url}/v1/audit")
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
