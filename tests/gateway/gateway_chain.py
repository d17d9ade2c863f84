"""Chain-side fixtures support: funded users and a published subnet on a real anvil.

The signer process and the subnet helpers themselves live in ``service_support``.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from service_support import create_subnet

from contracts.deploy import Deployment
from contracts.eip712 import sign_typed_data, spending_authorization
from contracts.tx import Transactor as DevTransactor

PRICE_WEI = 10**12
MIN_STAKE_WEI = 10**18


class World:
    """The deployed contracts, one published subnet, and helpers to fund users."""

    def __init__(self, w3: Any, deployment: Deployment, owner_key: str) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.owner_key = owner_key
        self.owner = DevTransactor(w3, owner_key)
        self.registry = deployment.contract("SubnetRegistry")
        self.vault = deployment.contract("StakingVault")
        self.ledger = deployment.contract("InferenceLedger")
        self.reth = deployment.contract("MockRETH")
        self.subnet_id = self.create_subnet(PRICE_WEI, MIN_STAKE_WEI)

    def create_subnet(self, price_wei: int, min_stake_wei: int, publish: bool = True) -> int:
        return create_subnet(
            self.w3,
            self.deployment,
            self.owner_key,
            name="test",
            price_wei=price_wei,
            min_stake_wei=min_stake_wei,
            publish=publish,
        )

    def new_user(
        self,
        *,
        stake_wei: int = 2 * 10**18,
        credit_wei: int = 10**16,
        cap_wei: int | None = 10**16,
        funder_key: str,
    ) -> Any:
        user = Account.create()
        funder = DevTransactor(self.w3, funder_key)
        funder.send({"to": user.address, "value": 10**18})
        tx = DevTransactor(self.w3, user.key.hex())
        if stake_wei:
            tx.transact(self.reth.functions.mint(user.address, stake_wei))
            tx.transact(self.reth.functions.approve(self.vault.address, stake_wei))
            tx.transact(self.vault.functions.stake(self.reth.address, stake_wei))
        if credit_wei:
            tx.transact(self.ledger.functions.deposit(), value_wei=credit_wei)
        if cap_wei is not None:
            expiry, nonce = int(time.time()) + 86_400, 1
            signature = self.sign_cap(user.key.hex(), cap_wei, expiry, nonce)
            tx.transact(
                self.ledger.functions.authorizeSpending(
                    user.address, cap_wei, expiry, nonce, signature
                )
            )
        return user

    def sign_cap(self, key: str, cap_wei: int, expiry: int, nonce: int) -> bytes:
        typed = spending_authorization(
            chain_id=self.deployment.chain_id,
            ledger=self.ledger.address,
            user=Account.from_key(key).address,
            max_total_spend_wei=cap_wei,
            expiry=expiry,
            nonce=nonce,
        )
        return sign_typed_data(key, typed)
