"""The caller library: error translation, and the Transactor's failure paths on a real chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from eth_account import Account
from signer_support import Keystore, SignerProcess, ledger_tx
from web3 import Web3

from contracts import decode_revert
from contracts.deploy import Deployment
from signer import (
    SignerClient,
    SignerRefused,
    SignerUnavailable,
    TransactionReverted,
    Transactor,
    WouldRevert,
)
from signer.client import SignedTransaction


@pytest.fixture(scope="module")
def transactor(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> Iterator[Transactor]:
    signer = make_signer()
    assert deployment.w3 is not None
    with signer.client() as client:
        tx = Transactor(deployment.w3, client, receipt_timeout_s=30)
        tx.sync_nonce()
        yield tx


def test_an_allowed_call_is_signed_recovers_to_the_operator_and_is_mined(
    transactor: Transactor, deployment: Deployment, keystore: Keystore
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    client = transactor.signer
    nodes = deployment.contract("NodeRegistry")
    receipt = transactor.transact(
        nodes.functions.register("operator", "https://op.example"),
        idempotency_key="register-operator",
    )
    assert receipt["status"] == 1
    assert "operator" in nodes.functions.nodeOf(keystore.address).call()
    signed = client.record("register-operator")
    assert signed is not None
    assert Account.recover_transaction(signed["raw_transaction"]) == keystore.address
    assert client.address() == keystore.address
    # The same key again (a caller that lost the answer) sends nothing new.
    again = transactor.transact(
        nodes.functions.register("operator", "https://op.example"),
        idempotency_key="register-operator",
    )
    assert again["transactionHash"] == receipt["transactionHash"]
    assert client.next_nonce() == w3.eth.get_transaction_count(
        Web3.to_checksum_address(keystore.address)
    )


def test_an_unreachable_signer_is_signer_unavailable_after_the_retries() -> None:
    client = SignerClient("http://127.0.0.1:9", "tester", b"s" * 32, attempts=2, backoff_s=0.01)
    with client, pytest.raises(SignerUnavailable):
        client.address()


def test_a_problem_body_becomes_signer_refused_with_its_reason(
    transactor: Transactor, deployment: Deployment
) -> None:
    with pytest.raises(SignerRefused) as exc:
        transactor.signer.sign_transaction(ledger_tx(deployment, chainId=1), "refused-0001")
    assert (exc.value.status, exc.value.reason) == (403, "wrong_chain")
    assert exc.value.problem["status"] == 403


def test_a_5xx_or_non_json_answer_is_never_taken_for_a_signature() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    client = SignerClient(
        "http://signer", "tester", b"s" * 32, attempts=2, backoff_s=0.0,
        transport=httpx.MockTransport(answer),
    )  # fmt: skip
    with client, pytest.raises(SignerUnavailable, match="502"):
        client.next_nonce()


def test_the_wire_format_of_a_signed_transaction_round_trips() -> None:
    body = {
        "raw_transaction": "0x02ab",
        "hash": "0x" + "11" * 32,
        "nonce": 4,
        "from": "0x" + "22" * 20,
        "idempotency_key": "k-00000001",
    }
    signed = SignedTransaction.from_response(json.loads(json.dumps(body)))
    assert (signed.raw_transaction, signed.nonce) == (b"\x02\xab", 4)


def test_transact_refuses_a_call_that_would_revert_without_signing_it(
    transactor: Transactor, deployment: Deployment
) -> None:
    ledger = deployment.contract("InferenceLedger")
    before = transactor.signer.next_nonce()
    with pytest.raises(WouldRevert, match="gas estimation failed") as caught:
        transactor.transact(ledger.functions.settle(999, 1), idempotency_key="settle-missing")
    decoded = decode_revert(caught.value.data)
    assert decoded is not None and decoded.name.startswith("InferenceLedger"), caught.value.data
    assert transactor.signer.next_nonce() == before
    assert transactor.signer.record("settle-missing") is None


def test_transact_reports_a_mined_revert_with_its_receipt(
    transactor: Transactor, deployment: Deployment
) -> None:
    ledger = deployment.contract("InferenceLedger")
    with pytest.raises(TransactionReverted) as exc:
        transactor.transact(
            ledger.functions.settle(999, 1), idempotency_key="settle-mined-revert", gas=100_000
        )
    assert exc.value.receipt["status"] == 0
    assert exc.value.tx_hash == transactor.signer.record("settle-mined-revert")["hash"]  # type: ignore[index]


def test_transact_fills_fees_within_the_policy_caps(
    transactor: Transactor, deployment: Deployment
) -> None:
    registry = deployment.contract("SubnetRegistry")
    fields = transactor.build(registry.functions.createSubnet("fees", 10**9, 0, 1000))
    assert fields["maxFeePerGas"] <= 100 * 10**9
    assert fields["maxPriorityFeePerGas"] <= fields["maxFeePerGas"]
    assert fields["gas"] <= 3_000_000
    assert "nonce" not in fields
    receipt = transactor.transact(
        registry.functions.createSubnet("fees", 10**9, 0, 1000), idempotency_key="subnet-fees"
    )
    assert receipt["status"] == 1
