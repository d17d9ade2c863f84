from __future__ import annotations

import pytest
from contract_support import ETH, events
from web3 import Web3

from contracts.tx import expect_revert

ST_ETH, WST_ETH, R_ETH = 1, 2, 3
ZERO = "0x" + "00" * 20


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


@pytest.fixture
def feed(c):
    return c("WstETHRateFeed")


def stake_steth(tx, steth, vault, who: int, amount: int) -> int:
    tx(who).transact(
        steth.functions.submit(Web3.to_checksum_address("0x" + "00" * 20)), value_wei=amount
    )
    tx(who).transact(steth.functions.approve(vault.address, amount))
    receipt = tx(who).transact(vault.functions.stake(steth.address, amount))
    return events(vault, receipt, "Staked")[0]["shares"]


def stake_token(tx, token, vault, who: int, amount: int) -> None:
    tx(who).transact(token.functions.mint(tx(who).address, amount))
    tx(who).transact(token.functions.approve(vault.address, amount))
    tx(who).transact(vault.functions.stake(token.address, amount))


def test_deployment_lists_the_three_tokens_with_their_kinds(vault, steth, wsteth, reth, feed):
    assert vault.functions.tokens().call() == [steth.address, wsteth.address, reth.address]
    assert vault.functions.rateFeed(wsteth.address).call() == (
        feed.address,
        26 * 3600,
        ETH,
        2 * ETH,
    )
    assert vault.functions.rateFeed(reth.address).call()[0] == ZERO
    assert vault.functions.tokenConfig(steth.address).call() == (ST_ETH, True)
    assert vault.functions.tokenConfig(wsteth.address).call() == (WST_ETH, True)
    assert vault.functions.tokenConfig(reth.address).call() == (R_ETH, True)
    assert vault.functions.cooldown().call() == 3600


def test_stake_steth_counts_shares_and_emits_staked(vault, steth, tx, addr):
    tx(7).transact(steth.functions.submit(addr(0)), value_wei=3 * ETH)
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


def test_wsteth_is_valued_through_its_feed_and_reth_at_its_own_rate(
    vault, wsteth, reth, feed, tx, addr
):
    stake_token(tx, wsteth, vault, 8, 2 * ETH)
    stake_token(tx, reth, vault, 8, 3 * ETH)
    w_rate = feed.functions.latestRoundData().call()[1]
    r_rate = reth.functions.getExchangeRate().call()
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * w_rate + 3 * r_rate
    receipt = tx(0).transact(reth.functions.setRate(r_rate + 10**16))
    assert events(reth, receipt, "RateUpdated") == [
        {"previousRate": r_rate, "newRate": r_rate + 10**16}
    ]
    # The token's own stEthPerToken no longer counts (bridged wstETH on Scroll has none); the feed does.
    tx(0).transact(wsteth.functions.setRate(w_rate * 2))
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * w_rate + 3 * (r_rate + 10**16)
    receipt = tx(0).transact(feed.functions.setAnswer(w_rate + 5 * 10**16))
    assert events(feed, receipt, "AnswerUpdated")[0]["answer"] == w_rate + 5 * 10**16
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * (w_rate + 5 * 10**16) + 3 * (
        r_rate + 10**16
    )
    assert vault.functions.stakeOf(addr(8), reth.address).call() == [3 * ETH, 3 * (r_rate + 10**16)]
    assert vault.functions.rateOf(wsteth.address).call() == w_rate + 5 * 10**16


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
    rate = vault.functions.rateOf(wsteth.address).call()
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
    tx(7).transact(steth.functions.submit(addr(0)), value_wei=ETH)
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


# ----------------------------------------------------------------- rate feeds (wstETH as on Scroll)


def test_a_stale_round_counts_the_stake_as_zero_and_a_fresh_one_counts_again(
    vault, wsteth, steth, feed, tx, addr, anvil
):
    stake_token(tx, wsteth, vault, 8, 2 * ETH)
    stake_steth(tx, steth, vault, 8, ETH)
    rate = feed.functions.latestRoundData().call()[1]
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * rate + ETH
    now = anvil.w3.eth.get_block("latest")["timestamp"]
    receipt = tx(0).transact(feed.functions.setUpdatedAt(now - 26 * 3600 - 10))
    assert events(feed, receipt, "UpdatedAtChanged")[0]["newUpdatedAt"] == now - 26 * 3600 - 10
    # stale: wstETH counts 0, the other tokens still count, and nothing reverts
    assert vault.functions.stakedValueOf(addr(8)).call() == ETH
    assert vault.functions.stakeOf(addr(8), wsteth.address).call() == [2 * ETH, 0]
    assert vault.functions.rateOf(wsteth.address).call() == 0
    # a round dated in the future is refused too
    tx(0).transact(feed.functions.setUpdatedAt(now + 3600))
    assert vault.functions.stakedValueOf(addr(8)).call() == ETH
    tx(0).transact(feed.functions.setAnswer(rate))
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * rate + ETH
    # just inside the allowance still counts
    latest = anvil.w3.eth.get_block("latest")["timestamp"]
    tx(0).transact(feed.functions.setUpdatedAt(latest - 26 * 3600 + 30))
    assert vault.functions.stakedValueOf(addr(8)).call() == 2 * rate + ETH


@pytest.mark.parametrize("answer", [0, -1, ETH - 1, 2 * ETH + 1, -(2**255)])
def test_an_out_of_bounds_answer_counts_the_stake_as_zero(vault, wsteth, feed, tx, addr, answer):
    stake_token(tx, wsteth, vault, 8, 2 * ETH)
    tx(0).transact(feed.functions.setAnswer(answer))
    assert vault.functions.stakedValueOf(addr(8)).call() == 0
    assert vault.functions.stakeOf(addr(8), wsteth.address).call() == [2 * ETH, 0]
    tx(0).transact(feed.functions.setAnswer(2 * ETH))  # the upper bound itself is accepted
    assert vault.functions.stakedValueOf(addr(8)).call() == 4 * ETH


def test_a_feed_that_reverts_or_is_not_a_feed_counts_zero_without_reverting(
    vault, wsteth, reth, tx, addr, c
):
    stake_token(tx, wsteth, vault, 8, ETH)
    stake_token(tx, reth, vault, 8, ETH)
    r_rate = reth.functions.getExchangeRate().call()
    # the ledger has code but no latestRoundData: the call reverts inside the vault's static call
    ledger = c("InferenceLedger")
    tx(0).transact(vault.functions.configureRateFeed(wsteth.address, ledger.address, 60, 1, 2))
    assert vault.functions.stakedValueOf(addr(8)).call() == r_rate
    # a token without its own rate function (a plain ERC-20, like bridged wstETH) and no feed counts 0 too
    tx(0).transact(vault.functions.configureRateFeed(wsteth.address, ZERO, 0, 0, 0))
    tx(0).transact(wsteth.functions.setRate(10**18))
    assert vault.functions.stakedValueOf(addr(8)).call() == 10**18 + r_rate
    tx(0).transact(vault.functions.configureToken(ledger.address, WST_ETH, True))
    assert vault.functions.rateOf(ledger.address).call() == 0


def test_configure_rate_feed_scales_other_decimals_and_can_be_removed(
    vault, reth, feed, tx, addr, anvil
):
    stake_token(tx, reth, vault, 8, 3 * ETH)
    # a feed with 18 decimals read with bounds in its own units; rETH now valued through it
    receipt = tx(0).transact(
        vault.functions.configureRateFeed(reth.address, feed.address, 3600, ETH, 3 * ETH)
    )
    assert events(vault, receipt, "RateFeedConfigured") == [
        {
            "token": reth.address,
            "feed": feed.address,
            "maxAgeSeconds": 3600,
            "minAnswer": ETH,
            "maxAnswer": 3 * ETH,
        }
    ]
    tx(0).transact(feed.functions.setAnswer(ETH + 5 * 10**16))
    assert vault.functions.stakedValueOf(addr(8)).call() == 3 * (ETH + 5 * 10**16)
    receipt = tx(0).transact(vault.functions.configureRateFeed(reth.address, ZERO, 0, 0, 0))
    assert events(vault, receipt, "RateFeedConfigured")[0]["feed"] == ZERO
    assert (
        vault.functions.stakedValueOf(addr(8)).call() == 3 * reth.functions.getExchangeRate().call()
    )


def test_configure_rate_feed_rejects_bad_tokens_feeds_ages_and_bounds(
    vault, steth, wsteth, feed, addr, c
):
    cases = [
        ((addr(9), feed.address, 60, 1, 2), "StakingVaultTokenNotAllowed", (addr(9),)),
        (
            (steth.address, feed.address, 60, 1, 2),
            "StakingVaultRateFeedNotSupported",
            (steth.address, ST_ETH),
        ),
        (
            (wsteth.address, addr(9), 60, 1, 2),
            "StakingVaultInvalidRateFeed",
            (wsteth.address, addr(9), 60, 1, 2),
        ),
        ((wsteth.address, feed.address, 0, 1, 2), "StakingVaultInvalidRateFeed", None),
        ((wsteth.address, feed.address, 7 * 86400 + 1, 1, 2), "StakingVaultInvalidRateFeed", None),
        ((wsteth.address, feed.address, 60, 0, 2), "StakingVaultInvalidRateFeed", None),
        ((wsteth.address, feed.address, 60, 3, 2), "StakingVaultInvalidRateFeed", None),
    ]
    for args, name, arguments in cases:
        err = expect_revert(vault.functions.configureRateFeed(*args), addr(0))
        assert err.name == name, args
        assert err.arguments == (arguments if arguments is not None else args), args
    err = expect_revert(
        vault.functions.configureRateFeed(wsteth.address, feed.address, 60, 1, 2), addr(5)
    )
    assert (err.name, err.arguments) == ("OwnableUnauthorizedAccount", (addr(5),))


def test_the_feed_stand_in_answers_like_a_chainlink_aggregator(feed, tx, addr, anvil):
    round_id, answer, started, updated, answered = feed.functions.latestRoundData().call()
    assert (round_id, answered) == (1, 1) and started == updated > 0
    assert feed.functions.decimals().call() == 18
    assert feed.functions.getRoundData(1).call() == [round_id, answer, started, updated, answered]
    err = expect_revert(feed.functions.getRoundData(7), addr(0))
    assert (err.name, err.arguments) == ("WstETHRateFeedNoRound", (7,))
    for call in (feed.functions.setAnswer(1), feed.functions.setUpdatedAt(1)):
        err = expect_revert(call, addr(5))
        assert (err.name, err.arguments) == ("OwnableUnauthorizedAccount", (addr(5),))


def test_anyone_mints_the_three_test_tokens(steth, wsteth, reth, tx, addr):
    for token in (steth, wsteth, reth):
        before = token.functions.balanceOf(addr(9)).call()
        tx(9).transact(token.functions.mint(addr(9), 3 * ETH))
        assert token.functions.balanceOf(addr(9)).call() == before + 3 * ETH
    err = expect_revert(steth.functions.mint(addr(9), 0), addr(9))
    assert err.name == "MockStETHZeroAmount"
