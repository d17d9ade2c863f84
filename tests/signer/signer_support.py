"""Helpers shared by the signer tests (request bodies for allowed calls)."""

from __future__ import annotations

from typing import Any

from contracts.deploy import Deployment


def ledger_tx(deployment: Deployment, **overrides: Any) -> dict[str, Any]:
    """An allowed call (InferenceLedger.settle(1, 1)) as signer request fields."""
    ledger = deployment.contract("InferenceLedger")
    data = ledger.functions.settle(1, 1)._encode_transaction_data()
    tx: dict[str, Any] = {
        "chainId": deployment.chain_id,
        "to": ledger.address,
        "data": data,
        "value": 0,
        "gas": 200_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**8,
    }
    tx.update(overrides)
    return tx


def create_subnet_tx(deployment: Deployment, name: str, **overrides: Any) -> dict[str, Any]:
    """SubnetRegistry.createSubnet(name, 1 gwei, 0, 1000): succeeds any number of times."""
    registry = deployment.contract("SubnetRegistry")
    data = registry.functions.createSubnet(name, 10**9, 0, 1000)._encode_transaction_data()
    return ledger_tx(deployment, to=registry.address, data=data, gas=400_000, **overrides)


def voucher(deployment: Deployment, amount: int, domain_name: str) -> dict[str, Any]:
    """EIP-712 typed data in the InferenceLedger's domain (primary type OperatorVoucher)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "OperatorVoucher": [{"name": "amount", "type": "uint256"}],
        },
        "primaryType": "OperatorVoucher",
        "domain": {
            "name": domain_name,
            "version": "1",
            "chainId": deployment.chain_id,
            "verifyingContract": deployment.addresses["InferenceLedger"],
        },
        "message": {"amount": amount},
    }
