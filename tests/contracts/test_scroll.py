from __future__ import annotations

import pytest
from web3 import Web3

from contracts import Anvil, Transactor, load_artifact
from contracts.scroll import (
    L1_GAS_PRICE_ORACLE,
    LOCAL_L1_FEE_PARAMS,
    L1FeeParams,
    compress,
    install_l1_gas_price_oracle,
    l1_fee_wei,
    onchain_l1_fee_wei,
    read_l1_fee_params,
)
from contracts.tx import expect_revert


@pytest.fixture
def oracle(anvil: Anvil):
    return anvil.w3.eth.contract(
        address=Web3.to_checksum_address(L1_GAS_PRICE_ORACLE),
        abi=load_artifact("L1GasPriceOracle").abi,
    )


@pytest.fixture
def restore_oracle(anvil: Anvil):
    yield
    install_l1_gas_price_oracle(anvil.w3, LOCAL_L1_FEE_PARAMS)


def test_the_local_chain_has_the_oracle_at_its_predeploy_address_in_galileo_mode(anvil, oracle):
    assert read_l1_fee_params(anvil.w3) == LOCAL_L1_FEE_PARAMS
    # the public getters read the slots Scroll's contract uses
    p = LOCAL_L1_FEE_PARAMS
    assert oracle.functions.l1BaseFee().call() == p.l1_base_fee_wei
    assert oracle.functions.l1BlobBaseFee().call() == p.l1_blob_base_fee_wei
    assert oracle.functions.commitScalar().call() == p.commit_scalar
    assert oracle.functions.blobScalar().call() == p.blob_scalar
    assert oracle.functions.penaltyFactor().call() == p.penalty_factor
    assert oracle.functions.isCurie().call() and oracle.functions.isFeynman().call()
    assert oracle.functions.isGalileo().call()
    assert oracle.functions.getL1GasUsed(b"\x01" * 100).call() == 0


@pytest.mark.parametrize("size", [0, 1, 120, 1_000, 49_999, 50_000, 120_000])
def test_get_l1_fee_is_scrolls_galileo_formula(oracle, size):
    p = LOCAL_L1_FEE_PARAMS
    base = (p.commit_scalar * p.l1_base_fee_wei + p.blob_scalar * p.l1_blob_base_fee_wei) * size
    expected = (base + base * size // p.penalty_factor) // 10**9
    assert oracle.functions.getL1Fee(b"\xab" * size).call() == expected == p.fee_wei(size)


def test_the_fee_grows_faster_than_linearly_in_the_compressed_size():
    p = LOCAL_L1_FEE_PARAMS
    assert p.fee_wei(2_000) > 2 * p.fee_wei(1_000)
    assert p.fee_wei(p.penalty_factor) == pytest.approx(
        2 * p.penalty_factor * (p.fee_wei(1)), rel=1e-3
    )


def test_a_signed_transaction_pays_the_fee_of_its_compressed_bytes(anvil, deployment):
    sender = Transactor(anvil.w3, anvil.accounts[3].private_key)
    ledger = deployment.contract("InferenceLedger")
    receipt = sender.transact(ledger.functions.deposit(), value_wei=10**15)
    raw = bytes(anvil.w3.eth.get_raw_transaction(receipt["transactionHash"]))
    packed = compress(raw)
    assert len(packed) <= len(raw)
    assert onchain_l1_fee_wei(anvil.w3, raw) == l1_fee_wei(raw, LOCAL_L1_FEE_PARAMS) > 0
    # incompressible bytes are charged at their raw length, never more
    noise = bytes(range(256)) * 2
    assert len(compress(noise)) <= len(noise)


def test_new_inputs_change_the_fee_at_once(anvil, oracle, restore_oracle):
    spike = L1FeeParams(
        l1_base_fee_wei=50 * 10**9,
        l1_blob_base_fee_wei=10**9,
        commit_scalar=LOCAL_L1_FEE_PARAMS.commit_scalar,
        blob_scalar=LOCAL_L1_FEE_PARAMS.blob_scalar,
        penalty_factor=10_000,
    )
    before = oracle.functions.getL1Fee(b"\x01" * 500).call()
    install_l1_gas_price_oracle(anvil.w3, spike)
    assert read_l1_fee_params(anvil.w3) == spike
    after = oracle.functions.getL1Fee(b"\x01" * 500).call()
    assert after == spike.fee_wei(500) > before
    assert spike.dominates(LOCAL_L1_FEE_PARAMS) and not LOCAL_L1_FEE_PARAMS.dominates(spike)


def test_a_zero_penalty_factor_or_no_galileo_is_refused(anvil, oracle, restore_oracle):
    w3 = anvil.w3
    w3.provider.make_request("anvil_setStorageAt", [L1_GAS_PRICE_ORACLE, hex(10), "0x" + "00" * 32])
    err = expect_revert(oracle.functions.getL1Fee(b"\x01"), anvil.accounts[0].address)
    assert (err.name, err.arguments) == ("L1GasPriceOracleZeroPenaltyFactor", ())
    w3.provider.make_request("anvil_setStorageAt", [L1_GAS_PRICE_ORACLE, hex(12), "0x" + "00" * 32])
    err = expect_revert(oracle.functions.getL1Fee(b"\x01"), anvil.accounts[0].address)
    assert err.name == "L1GasPriceOracleNotGalileo"
    assert read_l1_fee_params(w3) is None and onchain_l1_fee_wei(w3, b"\x01") is None
    with pytest.raises(ValueError, match="penalty_factor"):
        L1FeeParams(1, 1, 1, 1, 0).fee_wei(10)


def test_a_chain_without_the_oracle_reads_none():
    with Anvil.start(l1_fee_params=None) as chain:
        assert chain.w3.eth.get_code(L1_GAS_PRICE_ORACLE) == b""
        assert read_l1_fee_params(chain.w3) is None
