"""Sending transactions from a local private key, for deployment, tests and local tools.

Production operator calls go through the isolated signer instead (``signer.client``); this module is
for keys that are not the operator's: the deployer on a local chain, test users, the demo's wallets.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from contracts._artifacts import load_artifact
from contracts._errors import ContractRevert, would_revert
from core.transactions import TransactionFailed, TransactionReverted


class Transactor:
    """Builds, signs (locally) and sends EIP-1559 transactions, and waits for their receipts.

    Reverts surface as :class:`contracts.ContractRevert` with the custom error's name and arguments,
    found by simulating the call first (``eth_estimateGas``).

    Args:
        w3: Client of the chain.
        private_key: Sender's key, ``0x`` hex.
        timeout_s: How long to wait for each receipt, in seconds.
    """

    def __init__(self, w3: Web3, private_key: str, *, timeout_s: float = 60.0) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.timeout_s = timeout_s

    @property
    def address(self) -> str:
        """Checksummed sender address."""
        return str(self.account.address)

    def _fees(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        tip = 1_000_000  # 0.001 gwei: Scroll's tips are tiny; anvil accepts any.
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def send(self, tx: dict[str, Any]) -> TxReceipt:
        """Fill nonce, gas and fees of ``tx``, sign, send and wait for the receipt.

        Args:
            tx: Transaction fields (``to``, ``data``, ``value`` ...); missing ones are filled.

        Returns:
            The mined receipt (status 1).

        Raises:
            ContractRevert: The call would revert with a known custom error.
            WouldRevert: It would revert otherwise (the revert data is on the error).
            TransactionReverted: It was mined with status 0.
        """
        full: dict[str, Any] = {
            "from": self.address,
            "chainId": self.w3.eth.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "value": 0,
            **self._fees(),
            **tx,
        }
        if "gas" not in full:
            try:
                full["gas"] = int(self.w3.eth.estimate_gas(full) * 1.2) + 10_000  # type: ignore[arg-type]
            except ContractLogicError as exc:  # ContractCustomError is a subclass
                raise would_revert(exc) from exc
        signed = self.account.sign_transaction(full)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout_s)
        if receipt["status"] != 1:
            raise TransactionReverted(
                f"transaction {tx_hash.hex()} reverted", tx_hash.hex(), receipt
            )
        return receipt

    def transact(
        self, call: ContractFunction, *, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Send a contract function call.

        Args:
            call: A bound call, e.g. ``ledger.functions.deposit()``.
            value: Wei to send.
            gas: Gas limit; estimated when ``None``.

        Returns:
            The mined receipt.

        Raises:
            ContractRevert: The call would revert with a known custom error.
            WouldRevert: It would revert otherwise (the revert data is on the error).
            TransactionReverted: It was mined with status 0.
        """
        tx: dict[str, Any] = {
            "to": call.address,
            "data": call._encode_transaction_data(),
            "value": value,
        }
        if gas is not None:
            tx["gas"] = gas
        return self.send(tx)

    def deploy(self, name: str, *args: Any) -> Contract:
        """Deploy contract ``name`` from its committed artifact with constructor ``args``.

        Returns:
            The deployed contract, bound to its address.

        Raises:
            ContractRevert: The constructor reverts with a known custom error.
            TransactionFailed: Deployment failed otherwise.
        """
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send({"data": data})
        address = receipt["contractAddress"]
        if address is None:
            raise TransactionFailed(f"deployment of {name} returned no address")
        return self.w3.eth.contract(address=address, abi=artifact.abi)


def expect_revert(call: ContractFunction, sender: str, *, value: int = 0) -> ContractRevert:
    """Simulate ``call`` from ``sender`` and return the custom error it reverts with.

    Raises:
        AssertionError: The call does not revert, or reverts without a known custom error.
    """
    try:
        call.call({"from": Web3.to_checksum_address(sender), "value": value})  # type: ignore[arg-type]
    except ContractLogicError as exc:  # ContractCustomError is a subclass
        decoded = would_revert(exc)
        if isinstance(decoded, ContractRevert):
            return decoded
        raise AssertionError(f"reverted without a known custom error: {exc}") from exc
    raise AssertionError("call did not revert")
