"""EIP-712 typed data of the InferenceLedger, built once for the SDK, the gateway and the tests.

Source: EIP-712 (https://eips.ethereum.org/EIPS/eip-712); the domain is the one
``InferenceLedger`` declares through OpenZeppelin ``EIP712("2PM InferenceLedger", "1")``.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

#: EIP-712 domain name and version of the InferenceLedger.
LEDGER_DOMAIN_NAME = "2PM InferenceLedger"
LEDGER_DOMAIN_VERSION = "1"

SPENDING_AUTHORIZATION_TYPES: dict[str, list[dict[str, str]]] = {
    "SpendingAuthorization": [
        {"name": "user", "type": "address"},
        {"name": "maxTotalSpend", "type": "uint256"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
    ]
}


def spending_authorization(
    *, chain_id: int, ledger: str, user: str, max_total_spend_wei: int, expiry: int, nonce: int
) -> dict[str, Any]:
    """The full EIP-712 typed data (``eth_signTypedData_v4`` form) of a spending authorisation.

    Args:
        chain_id: Chain of the ledger (534351 for Scroll Sepolia).
        ledger: InferenceLedger address (the domain's ``verifyingContract``).
        user: The account that authorises spending.
        max_total_spend_wei: Most wei the operator may debit under this authorisation.
        expiry: Unix time (s) after which no debit is allowed.
        nonce: Above the nonce of the user's current authorisation.

    Returns:
        A dict with ``types``, ``primaryType``, ``domain`` and ``message``.
    """
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **SPENDING_AUTHORIZATION_TYPES,
        },
        "primaryType": "SpendingAuthorization",
        "domain": {
            "name": LEDGER_DOMAIN_NAME,
            "version": LEDGER_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(ledger),
        },
        "message": {
            "user": Web3.to_checksum_address(user),
            "maxTotalSpend": max_total_spend_wei,
            "expiry": expiry,
            "nonce": nonce,
        },
    }


def sign_typed_data(private_key: str, typed_data: dict[str, Any]) -> bytes:
    """Sign EIP-712 typed data with a local key; returns the 65-byte ``r || s || v`` signature."""
    signed = Account.sign_message(encode_typed_data(full_message=typed_data), private_key)
    return bytes(signed.signature)
