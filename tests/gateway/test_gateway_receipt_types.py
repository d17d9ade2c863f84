"""The gateway's stored receipt and the chain's struct meet only in ``Receipt.on_chain``."""

from __future__ import annotations

import dataclasses

import pytest
from eth_utils import to_checksum_address

from contracts.merkle import Receipt as ChainReceipt
from contracts.merkle import receipt_leaf
from gateway._receipts import Receipt, new_receipt_id


def _receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "receipt_id": new_receipt_id(),
        "user": "0x" + "ab" * 20,
        "subnet_id": 3,
        "model_hash": "0x" + "11" * 32,
        "request_hash": "0x" + "22" * 32,
        "response_hash": "0x" + "33" * 32,
        "price_wei": 7 * 10**15,
        "timestamp": 1_780_000_000,
        "rows": 7,
        **changes,
    }
    return Receipt(**fields)  # type: ignore[arg-type]


def test_on_chain_gives_the_struct_with_bytes_a_checksummed_user_and_no_rows() -> None:
    stored = _receipt()
    chain = stored.on_chain()
    assert isinstance(chain, ChainReceipt)
    assert chain.receipt_id == bytes.fromhex(stored.receipt_id[2:])
    assert chain.user == to_checksum_address(stored.user)
    assert chain.user != stored.user  # checksummed (EIP-55), the stored one is as given
    assert (chain.model_hash, chain.request_hash, chain.response_hash) == (
        b"\x11" * 32,
        b"\x22" * 32,
        b"\x33" * 32,
    )
    assert (chain.subnet_id, chain.price_wei, chain.timestamp) == (3, 7 * 10**15, 1_780_000_000)
    assert "rows" not in {f.name for f in dataclasses.fields(ChainReceipt)}
    assert chain.leaf() == receipt_leaf(chain)
    # the JSON round trip keeps the leaf: what is served is what is recorded
    assert Receipt.from_json(stored.to_json()).on_chain().leaf() == chain.leaf()


@pytest.mark.parametrize(
    "changes",
    [
        {"model_hash": "0x" + "11" * 31},  # 31 bytes
        {"request_hash": "0x" + "zz" * 32},  # not hex
        {"receipt_id": "0x"},  # empty
        {"timestamp": -1},
        {"price_wei": -1},
    ],
)
def test_on_chain_refuses_what_the_struct_cannot_hold(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _receipt(**changes).on_chain()
