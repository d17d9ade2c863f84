"""Receipt leaves and Merkle trees that match OpenZeppelin's ``StandardMerkleTree`` and ``MerkleProof``.

The gateway builds a tree per batch, the InferenceLedger stores its root, and anyone proves a receipt
against that root, on chain with ``InferenceLedger.verifyReceipt`` or off chain with :func:`verify_proof`.

Conventions (OpenZeppelin ``@openzeppelin/merkle-tree`` v1, ``StandardMerkleTree``):

* leaf = ``keccak256(keccak256(abi.encode(values...)))`` (double hashing prevents second-preimage
  attacks with inner nodes);
* leaves are sorted by their hash and laid out in a complete binary tree stored as an array
  (``tree[len - 1 - i] = leaf[i]``), inner node ``i`` = hash of children ``2i + 1`` and ``2i + 2``;
* a pair is hashed sorted (``keccak256(min(a, b) ++ max(a, b))``), so a proof is just the siblings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

#: ABI types of the receipt fields, in leaf order (``InferenceLedger.Receipt``).
RECEIPT_TYPES = (
    "bytes32",
    "address",
    "uint256",
    "bytes32",
    "bytes32",
    "bytes32",
    "uint256",
    "uint64",
)


@dataclass(frozen=True)
class Receipt:
    """One paid request, as recorded on chain.

    The gateway stores and serves its own JSON-shaped receipt (``gateway._receipts.Receipt``, with
    the billed ``rows``) and converts it into this struct with its ``on_chain()``; why there are
    two is told in that module's docstring.

    Attributes:
        receipt_id: 32-byte receipt id.
        user: Checksummed address of the caller billed.
        subnet_id: Subnet that served the request.
        model_hash: sha256 of the model bundle that served it (32 bytes).
        request_hash: sha256 of the request body (32 bytes).
        response_hash: sha256 of the response body (32 bytes).
        price_wei: Wei charged for this request.
        timestamp: Unix time (s) at which it was served.
    """

    receipt_id: bytes
    user: str
    subnet_id: int
    model_hash: bytes
    request_hash: bytes
    response_hash: bytes
    price_wei: int
    timestamp: int

    def __post_init__(self) -> None:
        for name in ("receipt_id", "model_hash", "request_hash", "response_hash"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise ValueError(f"{name} must be 32 bytes")
        object.__setattr__(self, "user", to_checksum_address(self.user))
        if not 0 <= self.timestamp < 2**64:
            raise ValueError("timestamp must fit in uint64")
        if self.price_wei < 0 or self.subnet_id < 0:
            raise ValueError("price_wei and subnet_id must be non-negative")

    def as_tuple(self) -> tuple[bytes, str, int, bytes, bytes, bytes, int, int]:
        """The fields in ABI order, as ``InferenceLedger.Receipt`` takes them."""
        return (
            self.receipt_id,
            self.user,
            self.subnet_id,
            self.model_hash,
            self.request_hash,
            self.response_hash,
            self.price_wei,
            self.timestamp,
        )

    def leaf(self) -> bytes:
        """This receipt's Merkle leaf (see :func:`receipt_leaf`)."""
        return receipt_leaf(self)


def receipt_leaf(receipt: Receipt) -> bytes:
    """The leaf of a receipt: ``keccak256(keccak256(abi.encode(fields)))``, as ``InferenceLedger.receiptLeaf``."""
    return keccak(keccak(abi_encode(list(RECEIPT_TYPES), list(receipt.as_tuple()))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative pair hash: keccak256 of the two sorted 32-byte values."""
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """A Merkle tree over 32-byte leaves, laid out as OpenZeppelin's ``StandardMerkleTree``.

    Args:
        leaves: Leaf hashes (already hashed, e.g. :func:`receipt_leaf`), at least one, distinct.

    Raises:
        ValueError: No leaves, a leaf that is not 32 bytes, or a repeated leaf.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        if any(len(leaf) != 32 for leaf in leaves):
            raise ValueError("every leaf must be 32 bytes")
        ordered = sorted(leaves)
        if len(set(ordered)) != len(ordered):
            raise ValueError("leaves must be distinct")
        n = len(ordered)
        tree: list[bytes] = [b""] * (2 * n - 1)
        for i, leaf in enumerate(ordered):
            tree[len(tree) - 1 - i] = leaf
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tree
        self._index = {leaf: len(tree) - 1 - i for i, leaf in enumerate(ordered)}

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self._tree[0]

    def __len__(self) -> int:
        return len(self._index)

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from ``leaf`` up to the root, for OpenZeppelin ``MerkleProof.verify``.

        Raises:
            KeyError: ``leaf`` is not in the tree.
        """
        index = self._index[leaf]
        siblings: list[bytes] = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            siblings.append(self._tree[sibling])
            index = (index - 1) // 2
        return siblings


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` takes ``leaf`` to ``root`` (OpenZeppelin ``MerkleProof.verify``)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
