from __future__ import annotations

from collections.abc import Callable

import pytest

from clients.sdk import ChainClient, Wallet
from contracts import Anvil, Deployment, Transactor

FUNDED_WEI = 10**21


@pytest.fixture
def fund(anvil: Anvil) -> Callable[[str], None]:
    """Give an address ETH with ``anvil_setBalance`` (no dev account is drained)."""

    def give(address: str, wei: int = FUNDED_WEI) -> None:
        anvil.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]

    return give


@pytest.fixture
def wallet(fund: Callable[[str], None]) -> Wallet:
    """A fresh funded wallet."""
    w = Wallet.create()
    fund(w.address)
    return w


@pytest.fixture
def chain(
    anvil: Anvil, deployment: Deployment, wallet: Wallet, chain_snapshot: None
) -> ChainClient:
    """The wallet's chain client over JSON-RPC; the chain is reverted after the test."""
    return ChainClient.connect(anvil.rpc_url, deployment.addresses, wallet)


@pytest.fixture
def mint(anvil: Anvil, deployment: Deployment) -> Callable[[Wallet, str, int], None]:
    """Get local stand-in tokens: mint wstETH/rETH, or submit ETH for stETH."""

    def get(wallet: Wallet, symbol: str, amount: int) -> None:
        tx = Transactor(anvil.w3, wallet._private_key_hex())
        token = deployment.contract(
            {"stETH": "MockStETH", "wstETH": "MockWstETH", "rETH": "MockRETH"}[symbol]
        )
        if symbol == "stETH":
            tx.transact(token.functions.submit(wallet.address), value_wei=amount)
        else:
            tx.transact(token.functions.mint(wallet.address, amount))

    return get
