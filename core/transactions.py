"""The errors of sending a transaction.

``contracts.Transactor`` sends every transaction, whoever signs it (a local key, or the
isolated signer through ``signer.RemoteSigner``), and raises these, so a caller handles a
transaction the same way whoever signs it::

    TransactionFailed                 not sent, not mined, or failed (``tx_hash`` if signed)
    ├── WouldRevert                   the simulation reverts; ``data`` is the revert data (bytes)
    │   └── contracts.ContractRevert  ... decoded to a custom error of a committed ABI
    └── TransactionReverted           mined with status 0 (``receipt``)

Callers branch on the type and read the revert data from :attr:`WouldRevert.data`, never from the
message (decode it with ``contracts.decode_revert``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TransactionFailed", "TransactionReverted", "WouldRevert", "revert_data_of"]


class TransactionFailed(RuntimeError):
    """A transaction was not sent, not mined, or failed.

    Args:
        message: What went wrong.
        tx_hash: The transaction hash (0x hex), if one was signed.
    """

    def __init__(self, message: str, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class WouldRevert(TransactionFailed):
    """Simulating the call (``eth_estimateGas``) says it reverts; nothing was signed or sent.

    Args:
        message: What went wrong.
        data: The revert data the node returned (4-byte selector and ABI-encoded arguments;
            ``b""`` when the node gave none).
    """

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class TransactionReverted(TransactionFailed):
    """The transaction was mined with status 0.

    Args:
        message: What went wrong.
        tx_hash: The transaction hash (0x hex).
        receipt: The mined receipt (a web3 ``TxReceipt``).
    """

    def __init__(self, message: str, tx_hash: str, receipt: Any) -> None:
        super().__init__(message, tx_hash)
        self.receipt = receipt


def revert_data_of(exc: BaseException) -> bytes:
    """The revert data a web3.py revert error carries, as bytes.

    web3.py raises ``ContractLogicError`` (and its subclass ``ContractCustomError``) from
    ``eth_estimateGas`` and ``eth_call`` when the node reports a revert; its ``data`` attribute
    holds the revert data as ``0x`` hex (web3.py docs, "Contract Exceptions").

    Args:
        exc: The error.

    Returns:
        The data; ``b""`` when the error carries none or it is not hex.
    """
    raw = getattr(exc, "data", None)
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str) and raw.startswith("0x"):
        try:
            return bytes.fromhex(raw[2:])
        except ValueError:
            return b""
    return b""
