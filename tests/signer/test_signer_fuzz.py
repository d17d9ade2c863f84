"""Whatever an authenticated caller sends, the service answers 2xx/4xx, never a 500."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer import parse_policy, policy_for_deployment
from signer._auth import Callers, add_caller, sign_request
from signer._service import SignerService
from signer._settings import SignerSettings
from signer._store import Store

LEDGER = "0x" + "11" * 20
SETTLE = "0x83d6979f" + "00" * 63 + "01" + "00" * 31 + "01"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
tx_field_values = st.one_of(
    json_values,
    st.integers(min_value=-(2**260), max_value=2**260),
    st.sampled_from(["0x", "0x00", "0xzz", SETTLE, LEDGER, "-1", "1e3", "\u00b2", "534351"]),
)
transactions = st.fixed_dictionaries(
    {},
    optional={
        name: tx_field_values
        for name in (
            "chainId", "to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas",
            "type", "from", "accessList", "nonce", "input",
        )
    },
)  # fmt: skip


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SignerService, bytes]]:
    root = tmp_path_factory.mktemp("fuzz")
    account = Account.create()
    policy = parse_policy(policy_for_deployment({"InferenceLedger": LEDGER}, chain_id=534351))
    secret = add_caller(root / "callers.json", "fuzzer")
    settings_ = SignerSettings(state_dir=root)
    store = Store(root / "signer.db", root / "audit.jsonl", account, time.time)
    yield (
        SignerService(settings_, account, policy, Callers(root / "callers.json"), store, time.time),
        secret,
    )
    store.close()


def call(service: tuple[SignerService, bytes], event: str, path: str, body: bytes) -> int:
    svc, secret = service
    headers = sign_request(secret, "fuzzer", "POST", path, body)
    status, answer = svc.handle(event, "POST", path, headers, body)
    assert isinstance(answer, dict)
    if status >= 400:
        assert answer["reason"] and answer["status"] == status
    return status


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tx=transactions, key=st.text(min_size=0, max_size=20) | st.just("fuzz-key-0001"))
def test_sign_transaction_never_answers_500(
    service: tuple[SignerService, bytes], tx: dict[str, Any], key: str
) -> None:
    body = json.dumps({"idempotency_key": key, "transaction": tx}).encode()
    assert call(service, "sign_transaction", "/v1/sign/transaction", body) in (
        200, 400, 403, 409, 429,
    )  # fmt: skip


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_on_any_route_never_answer_500(
    service: tuple[SignerService, bytes], body: bytes
) -> None:
    for event, path in [
        ("sign_transaction", "/v1/sign/transaction"),
        ("sign_typed_data", "/v1/sign/typed-data"),
        ("nonce_sync", "/v1/nonce/sync"),
    ]:
        assert call(service, event, path, body) in (200, 400, 403, 409, 429)


def test_deeply_nested_json_is_a_400(service: tuple[SignerService, bytes]) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    assert call(service, "sign_transaction", "/v1/sign/transaction", body) == 400


def test_fuzzing_leaves_an_intact_audit_log(
    service: tuple[SignerService, bytes], tmp_path: Path
) -> None:
    from signer._audit import verify_audit_log

    svc, _ = service
    assert verify_audit_log(svc.store.audit.path, address=svc.address).ok
