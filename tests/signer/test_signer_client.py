"""The caller library: error translation, and the Transactor's failure paths on a real chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from eth_account import Account
from signer_support import Keystore, SignerProcess, ledger_tx
from web3 import Web3

from contracts import ContractRevert, Transactor, decode_revert
from contracts.deploy import Deployment
from contracts.scroll import (
    LOCAL_L1_FEE_PARAMS,
    L1FeeParams,
    install_l1_gas_price_oracle,
    l1_fee_wei,
    onchain_l1_fee_wei,
)
from signer import (
    L1FeeCap,
    RemoteSigner,
    SignerClient,
    SignerRefused,
    SignerUnavailable,
    TransactionFailed,
    TransactionReverted,
)
from signer.client import SignedTransaction


@pytest.fixture(scope="module")
def transactor(
    signer_factory: Callable[..., SignerProcess], deployment: Deployment
) -> Iterator[Transactor]:
    signer = signer_factory()
    assert deployment.w3 is not None
    try:
        with signer.client() as client:
            tx = Transactor(deployment.w3, RemoteSigner(client), receipt_timeout_s=30)
            tx.sync_nonce()
            yield tx
    finally:
        signer.kill9()  # the module's signer: not left running for the rest of the session


def test_an_allowed_call_is_signed_recovers_to_the_operator_and_is_mined(
    transactor: Transactor, deployment: Deployment, keystore: Keystore
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    client = transactor.signer.client
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
        transactor.signer.client.sign_transaction(ledger_tx(deployment, chainId=1), "refused-0001")
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
    before = transactor.signer.client.next_nonce()
    with pytest.raises(ContractRevert) as caught:
        transactor.transact(ledger.functions.settle(999, 1), idempotency_key="settle-missing")
    decoded = decode_revert(caught.value.data)
    assert decoded is not None and decoded.name.startswith("InferenceLedger"), caught.value.data
    assert transactor.signer.client.next_nonce() == before
    assert transactor.signer.client.record("settle-missing") is None


def test_transact_reports_a_mined_revert_with_its_receipt(
    transactor: Transactor, deployment: Deployment
) -> None:
    ledger = deployment.contract("InferenceLedger")
    with pytest.raises(TransactionReverted) as exc:
        transactor.transact(
            ledger.functions.settle(999, 1), idempotency_key="settle-mined-revert", gas=100_000
        )
    assert exc.value.receipt["status"] == 0
    assert exc.value.tx_hash == transactor.signer.client.record("settle-mined-revert")["hash"]  # type: ignore[index]


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


CEILINGS = L1FeeParams(
    l1_base_fee_wei=2 * LOCAL_L1_FEE_PARAMS.l1_base_fee_wei,
    l1_blob_base_fee_wei=2 * LOCAL_L1_FEE_PARAMS.l1_blob_base_fee_wei,
    commit_scalar=LOCAL_L1_FEE_PARAMS.commit_scalar,
    blob_scalar=LOCAL_L1_FEE_PARAMS.blob_scalar,
    penalty_factor=LOCAL_L1_FEE_PARAMS.penalty_factor // 2,
)


def test_the_signer_caps_the_fee_including_the_l1_fee_without_using_a_nonce(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    registry = deployment.contract("SubnetRegistry")
    signer = make_signer(l1_fee=L1FeeCap(10**18, CEILINGS))
    with signer.client() as client:
        tx = Transactor(w3, RemoteSigner(client), receipt_timeout_s=30)
        tx.sync_nonce()
        receipt = tx.transact(
            registry.functions.createSubnet("l1-fee", 10**9, 0, 1000), idempotency_key="l1-fee-ok"
        )
        assert receipt["status"] == 1
        record = client.record("l1-fee-ok")
        assert record is not None
        raw = bytes.fromhex(record["raw_transaction"][2:])
        bound = int(record["l1_fee_bound_wei"])
        actual = onchain_l1_fee_wei(w3, raw)
        assert actual is not None
        assert bound == l1_fee_wei(raw, CEILINGS) > actual > 0  # the ceilings are above the chain's
    tight = make_signer(l1_fee=L1FeeCap(10**9, CEILINGS))  # far below gas x maxFeePerGas
    with tight.client() as client:
        tx = Transactor(w3, RemoteSigner(client), receipt_timeout_s=30)
        before = tx.sync_nonce()
        with pytest.raises(SignerRefused) as exc:
            tx.transact(
                registry.functions.createSubnet("l1-no", 10**9, 0, 1000),
                idempotency_key="l1-fee-no",
            )
        assert exc.value.reason == "total_fee_over_cap"
        assert client.next_nonce() == before and client.record("l1-fee-no") is None


def test_the_transactor_does_not_ask_for_a_signature_while_l1_fees_are_above_the_ceilings(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    registry = deployment.contract("SubnetRegistry")
    signer = make_signer(l1_fee=L1FeeCap(10**18, CEILINGS))
    spike = replace(LOCAL_L1_FEE_PARAMS, l1_base_fee_wei=3 * CEILINGS.l1_base_fee_wei)
    with signer.client() as client:
        tx = Transactor(w3, RemoteSigner(client), receipt_timeout_s=30)
        before = tx.sync_nonce()
        install_l1_gas_price_oracle(w3, spike)
        try:
            with pytest.raises(TransactionFailed, match=r"above the signer policy's \[l1_fee\]"):
                tx.transact(
                    registry.functions.createSubnet("spike", 10**9, 0, 1000),
                    idempotency_key="l1-spike",
                )
            assert client.next_nonce() == before and client.record("l1-spike") is None
        finally:
            install_l1_gas_price_oracle(w3, LOCAL_L1_FEE_PARAMS)
        assert (
            tx.transact(
                registry.functions.createSubnet("spike", 10**9, 0, 1000), idempotency_key="l1-spike"
            )["status"]
            == 1
        )


def _rpc(w3: Web3, method: str, *params: object) -> object:
    answer = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture
def manual_mining(deployment: Deployment) -> Iterator[Web3]:
    """Blocks only when the test mines them, so a transaction can wait in the pool."""
    w3 = deployment.w3
    assert w3 is not None
    _rpc(w3, "evm_setAutomine", False)
    try:
        yield w3
    finally:
        _rpc(w3, "evm_setIntervalMining", 0)
        _rpc(w3, "evm_setAutomine", True)
        _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(10**9))
        _rpc(w3, "evm_mine")


def _stuck_subnet_tx(
    w3: Web3, deployment: Deployment, client: SignerClient, key: str, base_fee_wei: int
) -> SignedTransaction:
    """Sign and send a call at 2 gwei, then mine a block at a base fee above it.

    geth and l2geth keep such a transaction pending; anvil drops it from its pool, so sending it
    again is refused as under the base fee. Either way it blocks its nonce until replaced.
    """
    registry = deployment.contract("SubnetRegistry")
    fields = {
        "chainId": deployment.chain_id,
        "to": registry.address,
        "data": registry.functions.createSubnet(key, 10**9, 0, 1000)._encode_transaction_data(),
        "value": 0,
        "gas": 300_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    signed = client.sign_transaction(fields, key)
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(10**9))
    _rpc(w3, "evm_mine")  # start from a 1 gwei base fee
    w3.eth.send_raw_transaction(signed.raw_transaction)  # accepted: under the current base fee
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(base_fee_wei))
    _rpc(w3, "evm_mine")  # a block at the raised base fee, without the 2 gwei transaction
    assert w3.eth.get_transaction_count(signed.sender, "latest") == signed.nonce
    assert int(w3.eth.get_block("latest")["baseFeePerGas"]) == base_fee_wei
    return signed


def test_a_transaction_under_the_base_fee_is_replaced_with_the_same_nonce_and_higher_fees(
    make_signer: Callable[..., SignerProcess], deployment: Deployment, manual_mining: Web3
) -> None:
    w3 = manual_mining
    signer = make_signer()
    with signer.client() as client:
        tx = Transactor(
            w3, RemoteSigner(client), receipt_timeout_s=60, poll_s=0.1, replace_after_s=0.5
        )
        tx.sync_nonce()
        stuck = _stuck_subnet_tx(w3, deployment, client, "stuck-subnet", 20 * 10**9)
        _rpc(w3, "evm_setIntervalMining", 1)
        receipt = tx.broadcast_and_wait(stuck)
        assert receipt["status"] == 1 and receipt["transactionHash"].to_0x_hex() != stuck.hash
        mined = w3.eth.get_transaction(receipt["transactionHash"])
        assert mined["nonce"] == stuck.nonce and mined["from"] == stuck.sender
        assert mined["maxFeePerGas"] >= 20 * 10**9 and mined["maxPriorityFeePerGas"] >= 11 * 10**8
        assert mined["maxFeePerGas"] <= 100 * 10**9  # the policy's cap
        replacement = client.record("stuck-subnet.r1")
        assert replacement is not None and replacement["replaces"] == stuck.hash
        assert replacement["nonce"] == stuck.nonce
        entries = [e for e in signer.audit_entries() if e.get("event") == "replace_transaction"]
        assert entries and entries[0]["outcome"] == "signed"
        assert entries[0]["replaces"] == stuck.hash and entries[0]["nonce"] == stuck.nonce
        # the signer's nonce moved on only once: the replacement took no nonce of its own
        assert client.next_nonce() == stuck.nonce + 1


def test_no_replacement_above_the_policy_fee_cap_and_the_wait_ends_in_a_clear_failure(
    make_signer: Callable[..., SignerProcess], deployment: Deployment, manual_mining: Web3
) -> None:
    w3 = manual_mining
    signer = make_signer()
    with signer.client() as client:
        tx = Transactor(
            w3, RemoteSigner(client), receipt_timeout_s=3, poll_s=0.1, replace_after_s=0.5
        )
        tx.sync_nonce()
        # the cap is 100 gwei: a 2 gwei transaction can be replaced, but not to a 300 gwei base fee
        stuck = _stuck_subnet_tx(w3, deployment, client, "capped-subnet", 300 * 10**9)
        with pytest.raises(TransactionFailed, match=r"no receipt for nonce \d+ \(\d version"):
            tx.broadcast_and_wait(stuck)
        # every replacement stayed under the cap (the first at 100 gwei, then none)
        for attempt in (1, 2, 3):
            record = client.record(f"capped-subnet.r{attempt}")
            if record is None:
                break
            fields = Account.recover_transaction(record["raw_transaction"])
            assert fields == stuck.sender
        assert client.record("capped-subnet.r2") is None  # 100 gwei is the cap: no second raise


def test_the_signer_refuses_a_replacement_under_ten_percent_or_over_the_cap(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    signer = make_signer()
    with signer.client() as client:
        original = client.sign_transaction(ledger_tx(deployment), "replace-me-1")
        cases = [
            (2 * 10**9 + 2 * 10**8 - 1, 11 * 10**7, "replacement_underpriced"),  # max fee +9.99 %
            (22 * 10**8, 11 * 10**7 - 1, "replacement_underpriced"),  # priority fee short
            (101 * 10**9, 10**9, "fee_over_cap"),
        ]
        for max_fee, priority, reason in cases:
            with pytest.raises(SignerRefused) as exc:
                client.replace_transaction("replace-me-1", max_fee, priority, "replace-me-1.r1")
            assert exc.value.reason == reason, (max_fee, priority)
        with pytest.raises(SignerRefused) as exc:
            client.replace_transaction("no-such-key", 10**10, 10**9, "replace-me-2.r1")
        assert exc.value.reason == "not_found" and exc.value.status == 404
        ok = client.replace_transaction("replace-me-1", 22 * 10**8, 11 * 10**7, "replace-me-1.r1")
        assert ok.nonce == original.nonce and ok.hash != original.hash
        # the same key and body again: the very same bytes; another body: a conflict
        again = client.replace_transaction(
            "replace-me-1", 22 * 10**8, 11 * 10**7, "replace-me-1.r1"
        )
        assert again.raw_transaction == ok.raw_transaction
        with pytest.raises(SignerRefused) as exc:
            client.replace_transaction("replace-me-1", 3 * 10**9, 2 * 10**8, "replace-me-1.r1")
        assert exc.value.reason == "idempotency_conflict"
        assert client.next_nonce() == original.nonce + 1
        refusals = [
            e for e in signer.audit_entries() if e.get("reason") == "replacement_underpriced"
        ]
        assert len(refusals) == 2


def test_the_first_call_syncs_a_fresh_signers_nonce_with_the_chain(
    make_signer: Callable[..., SignerProcess], deployment: Deployment
) -> None:
    w3 = deployment.w3
    assert w3 is not None
    signer = make_signer()  # a new state directory: its nonce starts at 0
    with signer.client() as client:
        assert client.next_nonce() == 0
        confirmed = w3.eth.get_transaction_count(client.address(), "latest")
        assert confirmed > 0
        tx = Transactor(w3, RemoteSigner(client), receipt_timeout_s=30)
        registry = deployment.contract("SubnetRegistry")
        receipt = tx.transact(
            registry.functions.createSubnet("synced", 10**9, 0, 1000), idempotency_key="synced-1"
        )
        assert receipt["status"] == 1
        assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == confirmed
