from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract

from contracts import Anvil, Deployment, Transactor


@pytest.fixture(autouse=True)
def _isolated(chain_snapshot: None) -> None:
    """Every contract test starts from the freshly deployed set."""


@pytest.fixture
def tx(anvil: Anvil) -> Callable[[int], Transactor]:
    """``tx(i)`` sends transactions as development account ``i``."""
    cache: dict[int, Transactor] = {}

    def make(index: int) -> Transactor:
        if index not in cache:
            cache[index] = Transactor(anvil.w3, anvil.accounts[index].private_key)
        return cache[index]

    return make


@pytest.fixture
def addr(anvil: Anvil) -> Callable[[int], str]:
    return lambda index: anvil.accounts[index].address


@pytest.fixture
def c(deployment: Deployment) -> Callable[[str], Contract]:
    return deployment.contract
