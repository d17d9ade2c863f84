"""The one Transactor with a local key: fee replacement of a stuck transaction, typed failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from contracts import (
    Anvil,
    ContractRevert,
    Deployment,
    LocalKey,
    TransactionFailed,
    Transactor,
)


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    return w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


@pytest.fixture
def manual_mining(anvil: Anvil) -> Iterator[Web3]:
    """Blocks only when the test mines them, so a transaction can wait in the pool.

    anvil keeps its next base fee across ``evm_revert``, so the last block mined here is at the
    base fee the test started from: the reverted chain's next transactions price alike.
    """
    w3 = anvil.w3
    base_fee_wei = int(w3.eth.get_block("latest")["baseFeePerGas"])
    _rpc(w3, "evm_setAutomine", False)
    try:
        yield w3
    finally:
        _rpc(w3, "evm_setIntervalMining", 0)
        _rpc(w3, "evm_setAutomine", True)
        _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(base_fee_wei))
        _rpc(w3, "evm_mine")


def test_a_local_key_transaction_under_the_base_fee_is_replaced_with_the_same_nonce(
    anvil: Anvil, deployment: Deployment, manual_mining: Web3
) -> None:
    w3 = manual_mining
    # a fresh account: what the test leaves in anvil's pool can touch no other test's nonces
    key = LocalKey("0x" + bytes(Account.create().key).hex())
    _rpc(w3, "anvil_setBalance", key.address, hex(10**18))
    tx = Transactor(w3, key, receipt_timeout_s=60, poll_s=0.1, replace_after_s=0.5)
    registry = deployment.contract("SubnetRegistry")
    fields = tx.build(registry.functions.createSubnet("stuck-local", 10**9, 0, 1000))
    fields.update(maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9)
    fields["nonce"] = w3.eth.get_transaction_count(key.address, "pending")
    stuck = key.sign(fields, None)
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(10**9))
    _rpc(w3, "evm_mine")
    w3.eth.send_raw_transaction(stuck.raw_transaction)
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(20 * 10**9))
    _rpc(w3, "evm_mine")  # a block at 20 gwei, without the 2 gwei transaction
    assert w3.eth.get_transaction_count(key.address, "latest") == stuck.nonce
    _rpc(w3, "evm_setIntervalMining", 1)
    receipt = tx.broadcast_and_wait(stuck)
    assert receipt["status"] == 1
    assert receipt["transactionHash"].to_0x_hex() != stuck.hash
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    assert mined["nonce"] == stuck.nonce and mined["from"] == key.address
    assert mined["maxFeePerGas"] >= 20 * 10**9 and mined["maxPriorityFeePerGas"] >= 11 * 10**8
    assert mined["input"] == bytes.fromhex(fields["data"][2:])


def test_a_local_key_fills_nonce_gas_and_its_small_tip(
    anvil: Anvil, deployment: Deployment
) -> None:
    tx = Transactor(anvil.w3, anvil.accounts[4].private_key)
    ledger = deployment.contract("InferenceLedger")
    call = ledger.functions.deposit()
    fields = tx.build(call, value_wei=10**15)
    estimate = anvil.w3.eth.estimate_gas(
        {"from": tx.address, "to": ledger.address, "data": fields["data"], "value": 10**15}
    )
    assert fields["gas"] == estimate * 120 // 100 + 10_000
    assert fields["maxPriorityFeePerGas"] == 1_000_000
    before = anvil.w3.eth.get_transaction_count(tx.address)
    receipt = tx.transact(call, value_wei=10**15, idempotency_key="ignored-by-a-local-key")
    mined = anvil.w3.eth.get_transaction(receipt["transactionHash"])
    assert mined["nonce"] == before and mined["maxPriorityFeePerGas"] == 1_000_000


def test_a_revert_and_an_unpayable_call_fail_with_their_types(
    anvil: Anvil, deployment: Deployment
) -> None:
    ledger = deployment.contract("InferenceLedger")
    with pytest.raises(ContractRevert) as reverted:
        Transactor(anvil.w3, anvil.accounts[4].private_key).transact(
            ledger.functions.settle(999, 1)
        )
    assert reverted.value.name.startswith("InferenceLedger") and reverted.value.data[:4]
    empty = Account.create()
    with pytest.raises(TransactionFailed, match="gas estimation failed") as failed:
        Transactor(anvil.w3, "0x" + bytes(empty.key).hex()).transact(
            ledger.functions.deposit(), value_wei=10**18
        )
    assert type(failed.value) is TransactionFailed and failed.value.__cause__ is not None


@pytest.mark.parametrize(("bump_pct", "after_s"), [(9, 30.0), (15, 0.0)])
def test_replacement_settings_below_what_a_pool_accepts_are_refused(
    anvil: Anvil, bump_pct: int, after_s: float
) -> None:
    with pytest.raises(ValueError, match="fee_bump_pct"):
        Transactor(
            anvil.w3, anvil.accounts[4].private_key, fee_bump_pct=bump_pct, replace_after_s=after_s
        )
