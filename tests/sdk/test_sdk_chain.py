"""ChainClient against a real anvil with the contracts deployed (cooldown 1 h, credit delay 10 min)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from roles_support import earn_revenue

from clients.sdk import (
    ChainClient,
    ChainError,
    InvalidInput,
    NothingToWithdraw,
    TooEarly,
    TransactionReverted,
    Wallet,
)
from contracts import Anvil, Deployment
from core.net import free_port

ETH = 10**18
Mint = Callable[[Wallet, str, int], None]


def test_staking_reth_approves_the_vault_and_counts_at_the_tokens_rate(
    chain: ChainClient, wallet: Wallet, mint: Mint
) -> None:
    mint(wallet, "rETH", 2 * ETH)
    result = chain.stake("rETH", 2 * ETH)
    assert result.value == 2 * ETH and result.gas_used > 0
    assert chain.staked_value_wei() == 2 * ETH * 114 // 100  # MockRETH starts at 1.14 ETH
    assert chain.stake_of("reth") == (2 * ETH, 2 * ETH * 114 // 100)
    assert chain.token_balance("rETH") == 0


def test_staking_steth_credits_lido_shares(chain: ChainClient, wallet: Wallet, mint: Mint) -> None:
    mint(wallet, "stETH", ETH)
    result = chain.stake("stETH", ETH)
    assert result.value is not None and result.value > 0
    assert abs(chain.staked_value_wei() - ETH) <= 2  # Lido share rounding


def test_a_stake_within_the_allowance_needs_no_new_approval(
    chain: ChainClient, wallet: Wallet, mint: Mint, anvil: Anvil, deployment: Deployment
) -> None:
    mint(wallet, "wstETH", 4 * ETH)
    token = deployment.contract("MockWstETH")
    chain._send("approve", token.functions.approve(chain.vault.address, 4 * ETH))
    sent = anvil.w3.eth.get_transaction_count(wallet.address)
    chain.stake("wstETH", 3 * ETH)
    chain.stake("wstETH", ETH)
    assert anvil.w3.eth.get_transaction_count(wallet.address) == sent + 2  # two stakes, no approval
    assert chain.stake_of("wstETH")[0] == 4 * ETH


def test_a_withdrawal_stops_counting_at_once_and_pays_out_after_the_cooldown(
    chain: ChainClient, wallet: Wallet, mint: Mint, anvil: Anvil
) -> None:
    mint(wallet, "rETH", ETH)
    chain.stake("rETH", ETH)
    request = chain.request_withdrawal("rETH", ETH)
    assert request.value == 1
    assert chain.staked_value_wei() == 0
    with pytest.raises(TooEarly) as early:
        chain.withdraw(1)
    assert early.value.error_name == "StakingVaultCooldownActive"
    assert early.value.arguments[0] == 1
    assert 3590 <= early.value.seconds_left <= 3600
    assert re.match(
        r"the cooldown of withdrawal request 1 ends in (1 h|59 min \d+ s)"
        r" \(at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)$",
        str(early.value),
    )
    anvil.increase_time(3601)
    assert chain.withdraw(1).value == ETH
    assert chain.token_balance("rETH") == ETH
    with pytest.raises(NothingToWithdraw, match="request 1 was paid out already") as again:
        chain.withdraw(1)
    assert again.value.error_name == "StakingVaultAlreadyWithdrawn"


def test_withdrawing_more_shares_than_staked_reverts_with_the_vault_error(
    chain: ChainClient, wallet: Wallet
) -> None:
    with pytest.raises(TransactionReverted) as caught:
        chain.request_withdrawal("rETH", 5)
    assert caught.value.error_name == "StakingVaultInsufficientStake"
    assert caught.value.arguments == (wallet.address, chain.token_address("rETH"), 0, 5)


def test_staking_more_than_the_balance_is_refused_before_any_transaction(
    chain: ChainClient, wallet: Wallet, anvil: Anvil
) -> None:
    with pytest.raises(InvalidInput, match="holds 0 units of rETH"):
        chain.stake("rETH", ETH)
    assert anvil.w3.eth.get_transaction_count(wallet.address) == 0


def test_an_unknown_token_symbol_is_invalid_input(chain: ChainClient) -> None:
    with pytest.raises(InvalidInput, match="unknown staking token 'DAI'"):
        chain.stake("DAI", 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.stake("rETH", 0),
        lambda c: c.request_withdrawal("rETH", -1),
        lambda c: c.deposit(0),
        lambda c: c.request_credit_withdrawal(0),
        lambda c: c.sign_spending_authorization(-1),
        lambda c: c.sign_spending_authorization(1, expiry=0),
        lambda c: c.staked_value_wei("not an address"),
    ],
)
def test_out_of_range_arguments_are_refused_before_sending(
    chain: ChainClient, call: Callable[[ChainClient], object]
) -> None:
    with pytest.raises(InvalidInput):
        call(chain)


def test_the_vault_lists_the_three_tokens_by_symbol(
    chain: ChainClient, deployment: Deployment
) -> None:
    assert chain.tokens() == deployment.tokens


def test_credit_is_deposited_and_withdrawn_after_the_delay(
    chain: ChainClient, wallet: Wallet, anvil: Anvil
) -> None:
    chain.deposit(ETH)
    assert chain.credit().balance_wei == ETH
    ready = chain.request_credit_withdrawal(ETH // 4).value
    assert ready is not None and ready > time.time() - 60
    state = chain.credit()
    assert (state.pending_withdrawal_wei, state.withdrawal_ready_at) == (ETH // 4, ready)
    with pytest.raises(TooEarly) as early:
        chain.withdraw_credit()
    assert early.value.error_name == "InferenceLedgerWithdrawalNotReady"
    assert early.value.ready_at == ready and 590 <= early.value.seconds_left <= 600
    assert re.match(
        r"the credit withdrawal delay ends in (10 min|9 min \d+ s) \(at ", str(early.value)
    )
    anvil.increase_time(601)
    before = anvil.w3.eth.get_balance(wallet.address)
    result = chain.withdraw_credit()
    assert result.value == ETH // 4
    assert anvil.w3.eth.get_balance(wallet.address) > before
    assert chain.credit().balance_wei == 3 * ETH // 4


def test_a_credit_withdrawal_can_be_cancelled_once(chain: ChainClient) -> None:
    chain.deposit(ETH)
    chain.request_credit_withdrawal(ETH)
    chain.cancel_credit_withdrawal()
    assert chain.credit().pending_withdrawal_wei == 0
    with pytest.raises(NothingToWithdraw, match="no pending credit withdrawal") as none:
        chain.cancel_credit_withdrawal()
    assert none.value.error_name == "InferenceLedgerNoPendingWithdrawal"
    with pytest.raises(NothingToWithdraw, match=f"nothing to withdraw: {chain.address}"):
        chain.withdraw_credit()


def test_a_signed_spending_authorization_opens_spendable_credit(
    chain: ChainClient, wallet: Wallet
) -> None:
    chain.deposit(ETH)
    assert chain.credit().spendable_wei == 0
    signed = chain.sign_spending_authorization(ETH // 2)
    assert (signed.user, signed.nonce, signed.chain_id) == (wallet.address, 1, 534351)
    assert signed.expiry > time.time() + 29 * 86400
    chain.authorize_spending(signed)
    state = chain.credit()
    assert (state.max_total_spend_wei, state.cap_remaining_wei, state.nonce) == (
        ETH // 2,
        ETH // 2,
        1,
    )
    assert state.spendable_wei == ETH // 2
    assert chain.sign_spending_authorization(ETH).nonce == 2  # the next nonce is read from chain
    chain.revoke_spending()
    assert chain.credit().spendable_wei == 0


def test_a_replayed_spending_authorization_is_refused_with_its_nonce(
    chain: ChainClient, wallet: Wallet
) -> None:
    signed = chain.sign_spending_authorization(ETH)
    chain.authorize_spending(signed)
    with pytest.raises(TransactionReverted) as caught:
        chain.authorize_spending(signed)
    assert caught.value.error_name == "InferenceLedgerStaleNonce"
    assert caught.value.arguments == (wallet.address, 1, 1)


def test_an_authorization_signed_by_another_wallet_is_refused(
    chain: ChainClient, anvil: Anvil, deployment: Deployment
) -> None:
    other = ChainClient.connect(anvil.rpc_url, deployment.addresses, Wallet.create())
    forged = other.sign_spending_authorization(ETH, nonce=1)
    forged = type(forged)(chain.address, ETH, forged.expiry, 1, forged.signature)
    with pytest.raises(TransactionReverted, match="InferenceLedgerInvalidSignature"):
        chain.authorize_spending(forged)


def test_claiming_with_nothing_to_claim_reverts(chain: ChainClient) -> None:
    assert chain.claimable_wei() == 0
    with pytest.raises(
        NothingToWithdraw, match=f"nothing to claim: {chain.address} has no"
    ) as none:
        chain.claim()
    assert none.value.error_name == "InferenceLedgerNothingToClaim"


def test_complete_withdrawals_pays_only_the_matured_requests_and_says_when_the_rest_mature(
    chain: ChainClient, wallet: Wallet, mint: Mint, anvil: Anvil
) -> None:
    with pytest.raises(NothingToWithdraw, match="no pending stake withdrawal of rETH"):
        chain.complete_withdrawals("rETH")
    mint(wallet, "rETH", 3 * ETH)
    chain.stake("rETH", 3 * ETH)
    first = chain.request_withdrawal("rETH", ETH).value
    with pytest.raises(TooEarly, match=f"request {first} ends in (1 h|59 min)") as early:
        chain.complete_withdrawals("rETH")
    assert early.value.ready_at == chain.stake_withdrawals("rETH")[0].ready_at > early.value.now
    anvil.increase_time(1800)
    second = chain.request_withdrawal("rETH", 2 * ETH).value
    assert [r.request_id for r in chain.stake_withdrawals()] == [first, second]
    assert chain.stake_withdrawals("wstETH") == []
    anvil.increase_time(1801)
    paid = chain.complete_withdrawals("rETH")
    assert [p.value for p in paid] == [ETH]
    assert [(r.request_id, r.shares) for r in chain.stake_withdrawals("rETH")] == [
        (second, 2 * ETH)
    ]
    with pytest.raises(TooEarly, match=f"request {second} ends in (30 min|29 min)"):
        chain.complete_withdrawals("rETH")
    anvil.increase_time(1800)
    assert [p.value for p in chain.complete_withdrawals()] == [2 * ETH]
    assert chain.token_balance("rETH") == 3 * ETH
    with pytest.raises(NothingToWithdraw):
        chain.complete_withdrawals()


def test_a_claim_pays_the_settled_revenue_once(
    chain: ChainClient, wallet: Wallet, anvil: Anvil, deployment: Deployment
) -> None:
    earned = earn_revenue(anvil, deployment, wallet, 10**15)
    assert earned == 10**15 * 95 // 100  # 5 % protocol fee; owner share + sole contributor
    assert chain.claimable_wei() == earned
    before = anvil.w3.eth.get_balance(wallet.address)
    result = chain.claim()
    assert result.value == earned
    assert anvil.w3.eth.get_balance(wallet.address) > before
    assert chain.claimable_wei() == 0
    with pytest.raises(NothingToWithdraw, match="nothing to claim"):
        chain.claim()


def test_a_read_only_client_reads_but_refuses_to_send(anvil: Anvil, deployment: Deployment) -> None:
    reader = ChainClient.connect(anvil.rpc_url, deployment.addresses)
    assert reader.staked_value_wei(deployment.deployer) == 0
    with pytest.raises(InvalidInput, match="no wallet"):
        reader.deposit(1)
    with pytest.raises(InvalidInput, match="no wallet"):
        reader.sign_spending_authorization(1, nonce=1)


def test_an_unknown_batch_root_reverts_with_the_ledger_error(chain: ChainClient) -> None:
    with pytest.raises(TransactionReverted) as caught:
        chain.batch_root(999)
    assert caught.value.error_name == "InferenceLedgerUnknownBatch"


def test_an_unreachable_node_is_a_chain_error(deployment: Deployment) -> None:
    dead = ChainClient.connect(
        f"http://127.0.0.1:{free_port()}", deployment.addresses, Wallet.create()
    )
    with pytest.raises(ChainError, match="failed"):
        dead.staked_value_wei()
    with pytest.raises(ChainError):
        dead.deposit(1)


def test_a_client_needs_the_vault_and_ledger_addresses(anvil: Anvil) -> None:
    with pytest.raises(InvalidInput, match="StakingVault"):
        ChainClient.connect(anvil.rpc_url, {"InferenceLedger": "0x" + "11" * 20})


def test_a_stack_file_names_the_node_and_contracts(
    tmp_path: Path, anvil: Anvil, deployment: Deployment
) -> None:
    (tmp_path / "stack.json").write_text(
        json.dumps({"rpc_url": anvil.rpc_url, "contracts": deployment.addresses})
    )
    reader = ChainClient.from_stack_file(tmp_path / "stack.json")
    assert reader.chain_id == 534351
    with pytest.raises(InvalidInput, match="not a stack file"):
        (tmp_path / "bad.json").write_text("{}")
        ChainClient.from_stack_file(tmp_path / "bad.json")
    with pytest.raises(InvalidInput, match="cannot read"):
        ChainClient.from_stack_file(tmp_path / "absent.json")


def test_depositing_more_than_the_wallet_holds_is_refused_before_any_transaction(
    chain: ChainClient, wallet: Wallet, anvil: Anvil
) -> None:
    balance_wei = anvil.w3.eth.get_balance(wallet.address)
    with pytest.raises(InvalidInput, match=f"holds {balance_wei} wei of ETH, fewer than"):
        chain.deposit(balance_wei + 1)
    assert anvil.w3.eth.get_transaction_count(wallet.address) == 0


def test_a_json_rpc_error_reads_as_the_nodes_own_message(
    chain: ChainClient, wallet: Wallet
) -> None:
    call = {"from": wallet.address, "to": wallet.address, "value": 10**40}
    with pytest.raises(ChainError) as caught:
        chain._read("a call", lambda: chain.w3.eth.call(call))  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("a call failed: the node answered: ") and "{" not in message


def test_subnet_ownership_moves_only_when_the_proposed_owner_accepts(
    chain: ChainClient, wallet: Wallet, anvil: Anvil, deployment: Deployment
) -> None:
    from contracts import Transactor

    reg = deployment.contract("SubnetRegistry")
    Transactor(anvil.w3, wallet._private_key_hex()).transact(
        reg.functions.createSubnet("s", 1, 0, 0)
    )
    n = int(reg.functions.subnetCount().call())
    heir = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [heir.address, hex(10**18)])  # type: ignore[arg-type]
    theirs = ChainClient.connect(anvil.rpc_url, deployment.addresses, heir)
    with pytest.raises(TransactionReverted, match=f"no transfer of subnet {n} to {heir.address}"):
        theirs.accept_subnet_ownership(n)
    with pytest.raises(TransactionReverted, match=f"{heir.address} does not own subnet {n}") as no:
        theirs.transfer_subnet_ownership(n, heir.address)
    assert no.value.error_name == "SubnetRegistryNotSubnetOwner"
    with pytest.raises(InvalidInput, match="zero address"):
        chain.transfer_subnet_ownership(n, "0x" + "00" * 20)
    chain.transfer_subnet_ownership(n, heir.address)
    assert chain.subnet_owner(n) == (wallet.address, heir.address)
    theirs.accept_subnet_ownership(n)
    assert chain.subnet_owner(n) == (heir.address, None)
    with pytest.raises(TransactionReverted, match="there is no subnet 999"):
        chain.subnet_owner(999)
