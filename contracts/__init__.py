"""Solidity contracts of 2PM and their Python bindings.

The Solidity sources live in ``contracts/src`` and compile offline with the pinned npm ``solc``
(``npm run build:contracts``); the ABI and bytecode artifacts in ``contracts/artifacts`` are committed,
so Python users deploy and call the contracts without Node. This package loads those artifacts,
starts a local ``anvil`` chain, deploys the whole set in one call, and holds the receipt-hashing and
Merkle-tree code that the gateway, the SDK and the contracts must agree on.
"""

from contracts._artifacts import CONTRACT_NAMES, Artifact, load_artifact
from contracts._errors import ContractRevert, decode_revert, revert_error, would_revert
from contracts.chain import (
    SCROLL_MAINNET_CHAIN_ID,
    SCROLL_SEPOLIA_CHAIN_ID,
    Anvil,
    AnvilError,
    DevAccount,
)
from contracts.deploy import Deployment, deploy_all
from contracts.merkle import MerkleTree, Receipt, receipt_leaf, verify_proof
from contracts.tx import LocalKey, SignedTransaction, SigningBackend, SigningLimits, Transactor
from core.transactions import TransactionFailed, TransactionReverted, WouldRevert

__all__ = [
    "CONTRACT_NAMES",
    "SCROLL_MAINNET_CHAIN_ID",
    "SCROLL_SEPOLIA_CHAIN_ID",
    "Anvil",
    "AnvilError",
    "Artifact",
    "ContractRevert",
    "Deployment",
    "DevAccount",
    "LocalKey",
    "MerkleTree",
    "Receipt",
    "SignedTransaction",
    "SigningBackend",
    "SigningLimits",
    "TransactionFailed",
    "TransactionReverted",
    "Transactor",
    "WouldRevert",
    "decode_revert",
    "deploy_all",
    "load_artifact",
    "receipt_leaf",
    "revert_error",
    "verify_proof",
    "would_revert",
]
