"""Fixtures shared by every suite: one real anvil chain per test session, with the contracts deployed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts import Anvil, Deployment, deploy_all


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """A real anvil (chain id 534351, Shanghai rules) for the whole session."""
    with Anvil.start() as chain:
        yield chain


@pytest.fixture(scope="session")
def deployment(anvil: Anvil) -> Deployment:
    """The contract set deployed by account 0, operated by account 1, fees to account 2.

    Tests that change state should take ``chain_snapshot`` so they leave the chain as they found it.
    """
    accounts = anvil.accounts
    return deploy_all(
        anvil.w3,
        accounts[0].private_key,
        operator=accounts[1].address,
        fee_recipient=accounts[2].address,
        protocol_fee_bps=500,
        staking_cooldown_s=3600,
        credit_withdrawal_delay_s=600,
    )


@pytest.fixture
def chain_snapshot(anvil: Anvil, deployment: Deployment) -> Iterator[None]:
    """Revert the chain to its state before the test (``evm_snapshot`` / ``evm_revert``)."""
    snapshot = anvil.snapshot()
    yield
    anvil.revert(snapshot)


@pytest.fixture(scope="session")
def zk_keys_cached() -> None:
    """Make the development zk keys `twopm up` needs before any test starts it.

    On a fresh machine they take minutes (the 2^12 and 2^13 powers of tau, the logit and training
    circuits); made here, that time stays out of the stack's start-up timeout. Cached afterwards.
    """
    from zk import ensure_dev_keys

    ensure_dev_keys()
