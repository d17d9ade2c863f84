"""Support for the wallet-user role tests: revenue a wallet can claim, made the way the network makes it.

A subnet whose owner and only contributor is the earner, a paying user who deposits and signs a
spending cap, a batch recorded by the operator (development account 1 in the session's deployment),
and the revenue settled: every step a real transaction on the session's anvil.
"""

from __future__ import annotations

from clients.sdk import ChainClient, Wallet
from contracts import Anvil, Deployment, Transactor

__all__ = ["earn_revenue"]


def earn_revenue(anvil: Anvil, deployment: Deployment, earner: Wallet, price_wei: int) -> int:
    """Make ``earner`` the owner and sole contributor of a new subnet, bill one request, settle it.

    Args:
        anvil: The session's chain (account 1 is the ledger's operator).
        deployment: The session's contracts.
        earner: A funded wallet; it pays the gas of creating and publishing.
        price_wei: The one request's price, wei.

    Returns:
        What ``earner`` may claim now (wei): the price less the protocol fee.
    """
    registry = deployment.contract("SubnetRegistry")
    ledger = deployment.contract("InferenceLedger")
    owner = Transactor(anvil.w3, earner._private_key_hex())
    subnet_id = int(registry.functions.subnetCount().call()) + 1
    owner.transact(registry.functions.createSubnet("earned", price_wei, 0, 2000))
    h = b"\x22" * 32
    owner.transact(
        registry.functions.publishModel(subnet_id, h, "file:///m", h, h, [earner.address], [10_000])
    )
    payer = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [payer.address, hex(10**19)])  # type: ignore[arg-type]
    paying = ChainClient.from_deployment(deployment, payer, w3=anvil.w3)
    paying.deposit(price_wei)
    paying.authorize_spending(paying.sign_spending_authorization(price_wei))
    operator = Transactor(anvil.w3, anvil.accounts[1].private_key)
    operator.transact(
        ledger.functions.recordBatch(subnet_id, b"\x01" * 32, [payer.address], [price_wei], 1)
    )
    before = int(ledger.functions.claimableOf(earner.address).call())
    operator.transact(ledger.functions.settle(subnet_id, 1))
    return int(ledger.functions.claimableOf(earner.address).call()) - before
