from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import MerkleTree, Receipt, verify_proof
from contracts.merkle import RECEIPT_TYPES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "standard_tree.mjs"

receipts = st.builds(
    Receipt,
    receipt_id=st.binary(min_size=32, max_size=32),
    user=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    subnet_id=st.integers(0, 2**64),
    model_hash=st.binary(min_size=32, max_size=32),
    request_hash=st.binary(min_size=32, max_size=32),
    response_hash=st.binary(min_size=32, max_size=32),
    price_wei=st.integers(0, 2**128),
    timestamp=st.integers(0, 2**64 - 1),
)


def openzeppelin_tree(batch: list[Receipt]) -> dict:
    values = [
        [
            "0x" + v.hex() if isinstance(v, bytes) else (str(v) if isinstance(v, int) else v)
            for v in r.as_tuple()
        ]
        for r in batch
    ]
    out = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps({"types": list(RECEIPT_TYPES), "values": values}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.stdout)


@settings(max_examples=5, deadline=None)
@given(batch=st.lists(receipts, min_size=1, max_size=9, unique_by=lambda r: r.receipt_id))
def test_trees_and_proofs_equal_openzeppelins_standard_merkle_tree(batch):
    reference = openzeppelin_tree(batch)
    tree = MerkleTree([r.leaf() for r in batch])
    assert "0x" + tree.root.hex() == reference["root"]
    for receipt, expected in zip(batch, reference["proofs"], strict=True):
        assert "0x" + receipt.leaf().hex() == expected["leaf"]
        assert ["0x" + p.hex() for p in tree.proof(receipt.leaf())] == expected["proof"]


@given(
    batch=st.lists(receipts, min_size=1, max_size=40, unique_by=lambda r: r.receipt_id),
    data=st.data(),
)
def test_every_proof_verifies_and_a_changed_leaf_does_not(batch, data):
    tree = MerkleTree([r.leaf() for r in batch])
    for receipt in batch:
        assert verify_proof(tree.root, receipt.leaf(), tree.proof(receipt.leaf()))
    victim = data.draw(st.sampled_from(batch))
    cheaper = Receipt(**{**victim.__dict__, "price_wei": victim.price_wei + 1})
    assert not verify_proof(tree.root, cheaper.leaf(), tree.proof(victim.leaf()))


def test_a_single_leaf_is_its_own_root():
    leaf = b"\x07" * 32
    tree = MerkleTree([leaf])
    assert tree.root == leaf and tree.proof(leaf) == []


@pytest.mark.parametrize(
    ("leaves", "message"),
    [([], "at least one leaf"), ([b"\x01" * 31], "32 bytes"), ([b"\x01" * 32] * 2, "distinct")],
)
def test_bad_leaf_sets_are_rejected(leaves, message):
    with pytest.raises(ValueError, match=message):
        MerkleTree(leaves)


def test_receipts_reject_malformed_fields():
    good = dict(
        receipt_id=b"\x01" * 32,
        user="0x" + "11" * 20,
        subnet_id=1,
        model_hash=b"\x02" * 32,
        request_hash=b"\x03" * 32,
        response_hash=b"\x04" * 32,
        price_wei=1,
        timestamp=1,
    )
    Receipt(**good)
    for field, bad in [("receipt_id", b"\x01"), ("timestamp", 2**64), ("price_wei", -1)]:
        with pytest.raises(ValueError):
            Receipt(**{**good, field: bad})
