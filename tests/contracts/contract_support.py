"""Helpers for the contract tests."""

from __future__ import annotations

from typing import Any

from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

ETH = 10**18


def events(contract: Contract, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The decoded ``name`` events that ``contract`` emitted in ``receipt``, as plain dicts."""
    decoded = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    return [dict(e["args"]) for e in decoded if e["address"] == contract.address]
