from __future__ import annotations

import pytest
from contract_support import ETH, events
from web3 import Web3

from contracts.tx import expect_revert

ST_ETH, WST_ETH, R_ETH = 1, 2, 3


@pytest.fixture
def vault(c):
    return c("StakingVault")


@pytest.fixture
def steth(c):
    return c("MockStETH")


@pytest.fixture
def wsteth(c):
    return c("MockWstETH")


@pytest.fixture
def reth(c):
    return c("MockRETH")


def stake_steth(tx, steth, vault, who: int, amount: int) -> int:
    tx(who).transact(
        steth.functions.submit(Web3.to_checksum_address("0x" + "00" * 20)), value=amount
    )
    tx(who).transact(steth.functions.approve(vault.address, amount))
    receipt = tx(who).transact(vault.functions.stake(steth.address, amount))
    return events(vault, receipt, "Staked")[0]["shares"]


def stake_token(tx, token, vault, who: int, amount: int) -> None:
    tx(who).transact(token.functions.mint(tx(who).address, amount))
    tx(who).transact(token.functions.approve(vault.address, amount))
    tx(who).transact(vault.functions.stake(token.address, amount))


def test_deployment_lists_the_three_tokens_with_their_kinds(vault, steth, wsteth, reth):
    assert vault.functions.tokens().call() == [steth.address, wsteth.address, reth.address]
    assert vault.functions.tokenConfig(steth.address).call() == (ST_ETH, True)
    assert vault.functions.tokenConfig(wsteth.address).call() == (WST_ETH, True)
    assert vault.functions.tokenConfig(reth.address).call() == (R_ETH, True)
    assert vault.functions.cooldown().call() == 3600


def test_stake_steth_counts_shares_and_emits_staked(vault, steth, tx, addr):
    tx(7).transact(steth.functions.submit(addr(0)), value=3 * ETH)
    tx(7).transact(steth.functions.approve(vault.address, 2 * ETH))
    receipt = tx(7).transact(vault.functions.stake(steth.address, 2 * ETH))
    assert events(vault, receipt, "Staked") == [
        {"account": addr(7), "token": steth.address, "amount": 2 * ETH, "shares": 2 * ETH}
    ]
    assert vault.functions.stakeOf(addr(7), steth.address).call() == [2 * ETH, 2 * ETH]
    assert vault.functions.stakedValueOf(addr(7)).call() == 2 * ETH


def test_a_steth_rebase_raises_the_staked_value_without_a_transaction(vault, steth, tx, addr):
    shares = stake_steth(tx, steth, vault, 7, 4 * ETH)
    total = steth.functions.totalSupply().call()
    receipt = tx(0).transact(steth.functions.rebase(total * 105 // 100))
    assert events(steth, receipt, "Rebased") == [
        {"previousTotalPooledEther": total, "newTotalPooledEther": total * 105 // 100}
    ]
    expected = steth.functions.getPooledEthByShares(shares).call()
    assert expected == 4 * ETH * 105 // 100
    assert vault.functions.stakedValueOf(addr(7)).call() == expected


def test_wsteth_and_reth_are_valued_at_their_own_rates(vault, wsteth, reth, tx, addr):
    stake_token(tx, wsteth, vault, 8, 2 * ETH)
    stake_token(tx, reth, vault, 8, 3 * ETH)
    w_rate = wsteth.functions.stEthPerToken().call()
    r_rate = reth.functions.getExchangeRate().call()
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * w_rate + 3 * r_rate
    receipt = tx(0).transact(reth.functions.setRate(r_rate + 10**16))
    assert events(reth, receipt, "RateUpdated") == [
        {"previousRate": r_rate, "newRate": r_rate + 10**16}
    ]
    tx(0).transact(wsteth.functions.setRate(w_rate * 2))
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * (w_rate * 2) + 3 * (r_rate + 10**16)
    assert vault.functions.stakeOf(addr(8), reth.address).call() == [3 * ETH, 3 * (r_rate + 10**16)]


def test_request_withdrawal_drops_the_stake_at_once_and_withdraw_waits_out_the_cooldown(
    vault, wsteth, tx, addr, anvil
):
    stake_token(tx, wsteth, vault, 8, 5 * ETH)
    receipt = tx(8).transact(vault.functions.requestWithdrawal(wsteth.address, 2 * ETH))
    ready_at = anvil.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + 3600
    assert events(vault, receipt, "WithdrawalRequested") == [
        {
            "requestId": 1,
            "account": addr(8),
            "token": wsteth.address,
            "shares": 2 * ETH,
            "readyAt": ready_at,
        }
    ]
    rate = wsteth.functions.stEthPerToken().call()
    assert vault.functions.stakedValueOf(addr(8)).call() == 3 * rate
    assert vault.functions.withdrawalRequest(1).call() == (
        addr(8),
        wsteth.address,
        ready_at,
        False,
        2 * ETH,
    )
    assert vault.functions.withdrawalRequestCount().call() == 1

    err = expect_revert(vault.functions.withdraw(1), addr(8))
    assert err.name == "StakingVaultCooldownActive"
    assert err.arguments[:2] == (1, ready_at)

    anvil.increase_time(3600)
    before = wsteth.functions.balanceOf(addr(8)).call()
    receipt = tx(8).transact(vault.functions.withdraw(1))
    assert events(vault, receipt, "Withdrawn") == [
        {
            "requestId": 1,
            "account": addr(8),
            "token": wsteth.address,
            "shares": 2 * ETH,
            "amount": 2 * ETH,
        }
    ]
    assert wsteth.functions.balanceOf(addr(8)).call() == before + 2 * ETH
    err = expect_revert(vault.functions.withdraw(1), addr(8))
    assert (err.name, err.arguments) == ("StakingVaultAlreadyWithdrawn", (1,))


def test_withdrawing_steth_returns_the_shares_at_the_rebased_value(vault, steth, tx, addr, anvil):
    shares = stake_steth(tx, steth, vault, 7, 2 * ETH)
    tx(7).transact(vault.functions.requestWithdrawal(steth.address, shares))
    assert vault.functions.stakedValueOf(addr(7)).call() == 0
    total = steth.functions.totalSupply().call()
    tx(0).transact(steth.functions.rebase(total * 2))
    anvil.increase_time(3600)
    shares_before = steth.functions.sharesOf(addr(7)).call()
    receipt = tx(7).transact(vault.functions.withdraw(1))
    assert events(vault, receipt, "Withdrawn")[0]["amount"] == 4 * ETH
    assert steth.functions.sharesOf(addr(7)).call() == shares_before + shares


def test_withdraw_rejects_unknown_and_foreign_requests(vault, wsteth, tx, addr):
    err = expect_revert(vault.functions.withdraw(9), addr(8))
    assert (err.name, err.arguments) == ("StakingVaultUnknownRequest", (9,))
    err = expect_revert(vault.functions.withdrawalRequest(9), addr(8))
    assert (err.name, err.arguments) == ("StakingVaultUnknownRequest", (9,))
    stake_token(tx, wsteth, vault, 8, ETH)
    tx(8).transact(vault.functions.requestWithdrawal(wsteth.address, ETH))
    err = expect_revert(vault.functions.withdraw(1), addr(9))
    assert (err.name, err.arguments) == ("StakingVaultNotRequestOwner", (1, addr(9)))


def test_request_withdrawal_rejects_more_than_the_active_stake(vault, wsteth, tx, addr):
    stake_token(tx, wsteth, vault, 8, ETH)
    err = expect_revert(vault.functions.requestWithdrawal(wsteth.address, ETH + 1), addr(8))
    assert (err.name, err.arguments) == (
        "StakingVaultInsufficientStake",
        (addr(8), wsteth.address, ETH, ETH + 1),
    )
    err = expect_revert(vault.functions.requestWithdrawal(wsteth.address, 0), addr(8))
    assert err.name == "StakingVaultZeroAmount"


def test_stake_rejects_unlisted_disabled_and_zero_amounts(vault, wsteth, tx, addr, c):
    ledger = c("InferenceLedger")
    err = expect_revert(vault.functions.stake(ledger.address, ETH), addr(8))
    assert (err.name, err.arguments) == ("StakingVaultTokenNotAllowed", (ledger.address,))
    err = expect_revert(vault.functions.requestWithdrawal(ledger.address, ETH), addr(8))
    assert err.name == "StakingVaultTokenNotAllowed"
    err = expect_revert(vault.functions.stake(wsteth.address, 0), addr(8))
    assert err.name == "StakingVaultZeroAmount"
    receipt = tx(0).transact(vault.functions.configureToken(wsteth.address, WST_ETH, False))
    assert events(vault, receipt, "TokenConfigured") == [
        {"token": wsteth.address, "kind": WST_ETH, "stakingEnabled": False}
    ]
    err = expect_revert(vault.functions.stake(wsteth.address, ETH), addr(8))
    assert err.name == "StakingVaultTokenNotAllowed"


def test_a_disabled_token_keeps_counting_and_can_be_withdrawn(vault, reth, tx, addr, anvil):
    stake_token(tx, reth, vault, 8, ETH)
    tx(0).transact(vault.functions.configureToken(reth.address, R_ETH, False))
    assert vault.functions.stakedValueOf(addr(8)).call() == reth.functions.getExchangeRate().call()
    tx(8).transact(vault.functions.requestWithdrawal(reth.address, ETH))
    anvil.increase_time(3600)
    tx(8).transact(vault.functions.withdraw(1))
    assert reth.functions.balanceOf(addr(8)).call() == ETH


def test_configure_token_rejects_bad_tokens_kind_changes_and_a_full_list(
    vault, wsteth, tx, addr, c
):
    zero = "0x" + "00" * 20
    err = expect_revert(vault.functions.configureToken(zero, WST_ETH, True), addr(0))
    assert err.name == "StakingVaultInvalidToken"
    err = expect_revert(vault.functions.configureToken(wsteth.address, 0, True), addr(0))
    assert (err.name, err.arguments) == ("StakingVaultInvalidToken", (wsteth.address, 0))
    err = expect_revert(vault.functions.configureToken(wsteth.address, R_ETH, True), addr(0))
    assert (err.name, err.arguments) == (
        "StakingVaultTokenKindMismatch",
        (wsteth.address, WST_ETH, R_ETH),
    )
    for i in range(5):  # 3 listed + 5 = MAX_TOKENS
        fake = Web3.to_checksum_address(f"0x{i + 1:040x}")
        tx(0).transact(vault.functions.configureToken(fake, R_ETH, True))
    err = expect_revert(vault.functions.configureToken(addr(9), R_ETH, True), addr(0))
    assert (err.name, err.arguments) == ("StakingVaultTooManyTokens", (8,))


def test_set_cooldown_applies_to_new_requests_and_is_bounded(vault, wsteth, tx, addr, anvil):
    receipt = tx(0).transact(vault.functions.setCooldown(60))
    assert events(vault, receipt, "CooldownUpdated") == [
        {"previousCooldown": 3600, "newCooldown": 60}
    ]
    stake_token(tx, wsteth, vault, 8, ETH)
    tx(8).transact(vault.functions.requestWithdrawal(wsteth.address, ETH))
    anvil.increase_time(60)
    tx(8).transact(vault.functions.withdraw(1))
    err = expect_revert(vault.functions.setCooldown(30 * 86400 + 1), addr(0))
    assert (err.name, err.arguments) == (
        "StakingVaultCooldownTooLong",
        (30 * 86400 + 1, 30 * 86400),
    )


def test_only_the_owner_configures_and_ownership_moves_in_two_steps(vault, tx, addr):
    for call in (
        vault.functions.setCooldown(1),
        vault.functions.configureToken(addr(9), R_ETH, True),
    ):
        err = expect_revert(call, addr(5))
        assert (err.name, err.arguments) == ("OwnableUnauthorizedAccount", (addr(5),))
    tx(0).transact(vault.functions.transferOwnership(addr(5)))
    assert vault.functions.owner().call() == addr(0)
    err = expect_revert(vault.functions.acceptOwnership(), addr(6))
    assert err.name == "OwnableUnauthorizedAccount"
    tx(5).transact(vault.functions.acceptOwnership())
    assert vault.functions.owner().call() == addr(5)
    tx(5).transact(vault.functions.setCooldown(1))


def test_mock_steth_rejects_overdrafts_and_missing_allowance(steth, tx, addr):
    tx(7).transact(steth.functions.submit(addr(0)), value=ETH)
    err = expect_revert(steth.functions.transfer(addr(8), 2 * ETH), addr(7))
    assert err.name == "MockStETHInsufficientBalance"
    err = expect_revert(steth.functions.transferFrom(addr(7), addr(8), ETH), addr(8))
    assert (err.name, err.arguments) == (
        "MockStETHInsufficientAllowance",
        (addr(7), addr(8), 0, ETH),
    )
    err = expect_revert(steth.functions.submit(addr(0)), addr(7))
    assert err.name == "MockStETHZeroAmount"
    err = expect_revert(steth.functions.rebase(1), addr(7))
    assert err.name == "OwnableUnauthorizedAccount"
