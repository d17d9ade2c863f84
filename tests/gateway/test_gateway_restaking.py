"""Restaked stake read from EigenLayer stand-ins on a second anvil standing in for Ethereum L1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from contracts import Anvil, Deployment
from contracts.tx import Transactor, expect_revert
from gateway import GatewaySettings
from gateway._chain import ChainReader
from gateway._errors import ConfigurationError
from gateway._metrics import Metrics
from gateway._restaking import RestakingReader
from gateway._services import build_services

ETH = 10**18
TTL_S = 0.3


@pytest.fixture(scope="module")
def l1() -> Iterator[Anvil]:
    """Ethereum L1 stand-in: chain id 1, no Scroll L1GasPriceOracle."""
    with Anvil.start(chain_id=1, l1_fee_params=None) as chain:
        yield chain


@pytest.fixture(scope="module")
def eigen(l1: Anvil) -> dict[str, Any]:
    owner = Transactor(l1.w3, l1.accounts[0].private_key)
    manager = owner.deploy("MockDelegationManager", owner.address)
    strategy = owner.deploy("MockStrategy", owner.address)
    owner.transact(strategy.functions.setRate(11 * ETH // 10))  # 1 share = 1.1 stETH
    return {"owner": owner, "manager": manager, "strategy": strategy}


def _reader(
    anvil: Anvil, deployment: Deployment, l1: Anvil, eigen: dict[str, Any], operator: str | None
) -> ChainReader:
    reader = ChainReader.connect(
        anvil.rpc_url, dict(deployment.addresses), Metrics(), cache_ttl_s=TTL_S
    )
    reader.restaking = RestakingReader.from_settings(
        GatewaySettings(
            restaking_rpc_url=l1.rpc_url,
            restaking_delegation_manager=eigen["manager"].address,
            restaking_strategies=eigen["strategy"].address,
            restaking_operator=operator,
        )
    )
    return reader


def _stake_after_ttl(reader: ChainReader, user: str) -> int:
    time.sleep(TTL_S + 0.05)
    return asyncio.run(reader.stake_wei(user))


def test_delegated_restaked_stake_counts_and_slashing_withdrawal_undelegation_close_it(
    anvil: Anvil, deployment: Deployment, l1: Anvil, eigen: dict[str, Any]
) -> None:
    operator = l1.accounts[9].address
    reader = _reader(anvil, deployment, l1, eigen, operator)
    manager, strategy, owner = eigen["manager"], eigen["strategy"], eigen["owner"]
    staker = Transactor(l1.w3, l1.accounts[5].private_key)
    user = staker.address  # the same key on Scroll and on L1
    owner.transact(manager.functions.depositFor(user, strategy.address, 2 * ETH))
    assert _stake_after_ttl(reader, user) == 0  # deposited but not delegated: not counted
    staker.transact(manager.functions.delegateTo(operator))
    assert _stake_after_ttl(reader, user) == 22 * ETH // 10
    err = expect_revert(manager.functions.delegateTo(operator), user)
    assert (err.name, err.arguments) == ("MockDelegationManagerAlreadyDelegated", (user, operator))
    # a slashing to half the operator's magnitude halves the value at once (deposit shares stay)
    owner.transact(manager.functions.slashOperator(operator, ETH // 2))
    withdrawable, deposit = manager.functions.getWithdrawableShares(user, [strategy.address]).call()
    assert (withdrawable, deposit) == ([ETH], [2 * ETH])
    assert _stake_after_ttl(reader, user) == 11 * ETH // 10
    # a queued withdrawal removes the shares at once
    staker.transact(manager.functions.queueWithdrawal(strategy.address, ETH))
    assert _stake_after_ttl(reader, user) == 11 * ETH // 20
    # undelegating closes it
    staker.transact(manager.functions.undelegate())
    assert _stake_after_ttl(reader, user) == 0


def test_only_delegations_to_the_configured_operator_count(
    anvil: Anvil, deployment: Deployment, l1: Anvil, eigen: dict[str, Any]
) -> None:
    manager, strategy, owner = eigen["manager"], eigen["strategy"], eigen["owner"]
    staker = Transactor(l1.w3, l1.accounts[6].private_key)
    owner.transact(manager.functions.depositFor(staker.address, strategy.address, ETH))
    staker.transact(manager.functions.delegateTo(l1.accounts[8].address))
    strict = _reader(anvil, deployment, l1, eigen, l1.accounts[9].address)
    assert _stake_after_ttl(strict, staker.address) == 0
    anyone = _reader(anvil, deployment, l1, eigen, None)
    assert _stake_after_ttl(anyone, staker.address) == 11 * ETH // 10


def test_an_unreachable_l1_counts_restaked_stake_as_zero_and_the_vault_stake_still_counts(
    anvil: Anvil, deployment: Deployment, eigen: dict[str, Any]
) -> None:
    reader = ChainReader.connect(
        anvil.rpc_url, dict(deployment.addresses), Metrics(), cache_ttl_s=TTL_S
    )
    reader.restaking = RestakingReader.from_settings(
        GatewaySettings(
            restaking_rpc_url="http://127.0.0.1:9",  # nothing listens
            restaking_delegation_manager=eigen["manager"].address,
            restaking_strategies=eigen["strategy"].address,
        )
    )
    vault = deployment.contract("StakingVault")
    user = anvil.accounts[7].address
    assert asyncio.run(reader.stake_wei(user)) == vault.functions.stakedValueOf(user).call()


def test_partial_restaking_settings_are_a_configuration_error(eigen: dict[str, Any]) -> None:
    assert RestakingReader.from_settings(GatewaySettings()) is None
    with pytest.raises(ValueError, match="together"):
        RestakingReader.from_settings(GatewaySettings(restaking_rpc_url="http://127.0.0.1:9"))
    settings = GatewaySettings(
        rpc_url="http://127.0.0.1:9",
        contracts={"StakingVault": "0x" + "1" * 40, "SubnetRegistry": "0x" + "2" * 40,
                   "InferenceLedger": "0x" + "3" * 40},
        restaking_strategies=eigen["strategy"].address,
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="restaking needs"):
        build_services(settings)


def test_the_stand_ins_refuse_what_eigenlayer_refuses(l1: Anvil, eigen: dict[str, Any]) -> None:
    manager, strategy = eigen["manager"], eigen["strategy"]
    stranger = l1.accounts[4].address
    err = expect_revert(manager.functions.queueWithdrawal(strategy.address, 1), stranger)
    assert (err.name, err.arguments) == (
        "MockDelegationManagerInsufficientShares",
        (stranger, 0, 1),
    )
    operator = l1.accounts[3].address
    err = expect_revert(manager.functions.slashOperator(operator, ETH), l1.accounts[0].address)
    assert (err.name, err.arguments) == ("MockDelegationManagerInvalidMagnitude", (ETH, ETH))
    for call in (
        manager.functions.slashOperator(operator, 1),
        manager.functions.depositFor(stranger, strategy.address, 1),
        strategy.functions.setRate(1),
    ):
        err = expect_revert(call, stranger)
        assert (err.name, err.arguments) == ("OwnableUnauthorizedAccount", (stranger,))
