"""Scroll's L1 data fee: its ``L1GasPriceOracle`` predeploy, the Galileo formula, and a local stand-in.

Every Scroll transaction pays, beside ``gasUsed x effectiveGasPrice`` (the L2 fee), an L1 data fee for
publishing it on Ethereum. Since the Galileo upgrade (Scroll mainnet 2025-12-16) the predeploy at
:data:`L1_GAS_PRICE_ORACLE` computes it as::

    size = min(len(zstd(rlp(signed tx))), len(rlp(signed tx)))
    base = (commitScalar * l1BaseFee + blobScalar * l1BlobBaseFee) * size
    fee  = (base + base * size // penaltyFactor) // 1e9

(scroll-tech/scroll-contracts ``src/L2/predeploys/L1GasPriceOracle.sol``, ``_getL1FeeGalileo``), so the fee
grows faster than linearly in the compressed size. The oracle keeps its inputs in fixed storage slots
(:data:`SLOTS`), which this module reads directly and which the local anvil stand-in is given with
``anvil_setStorageAt``.

Scroll's sequencer compresses with its own zstd settings (scroll-tech/da-codec); this module compresses
with the ``zstandard`` library at level 3, so a size here may differ from the sequencer's by a few bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zstandard
from web3 import Web3

from contracts._artifacts import load_artifact

#: Address of Scroll's L1GasPriceOracle predeploy (mainnet and Sepolia).
L1_GAS_PRICE_ORACLE = "0x5300000000000000000000000000000000000002"
_ORACLE = Web3.to_checksum_address(L1_GAS_PRICE_ORACLE)
#: Storage slots of the oracle's inputs (scroll-tech/scroll-contracts, declaration order of L1GasPriceOracle).
SLOTS = {
    "l1_base_fee_wei": 1,
    "l1_blob_base_fee_wei": 5,
    "commit_scalar": 6,
    "blob_scalar": 7,
    "is_curie": 8,
    "penalty_factor": 10,
    "is_feynman": 11,
    "is_galileo": 12,
}
#: Fixed-point precision of the scalars (the contract's ``PRECISION``).
PRECISION = 10**9
#: zstd level used to estimate the compressed size.
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class L1FeeParams:
    """The oracle's inputs to the Galileo fee.

    Attributes:
        l1_base_fee_wei: Ethereum base fee, wei per gas.
        l1_blob_base_fee_wei: Ethereum blob base fee, wei per blob gas.
        commit_scalar: Execution (commit) scalar, 1e9 fixed point.
        blob_scalar: Blob scalar, 1e9 fixed point.
        penalty_factor: Compressed size in bytes at which the size penalty doubles the fee (> 0).
    """

    l1_base_fee_wei: int
    l1_blob_base_fee_wei: int
    commit_scalar: int
    blob_scalar: int
    penalty_factor: int

    def fee_wei(self, size: int) -> int:
        """The Galileo L1 fee of a transaction of ``size`` compressed bytes, in wei (integer maths as on chain).

        Raises:
            ValueError: ``penalty_factor`` is not positive or ``size`` is negative.
        """
        if self.penalty_factor <= 0 or size < 0:
            raise ValueError("penalty_factor must be > 0 and size >= 0")
        base = (
            self.commit_scalar * self.l1_base_fee_wei + self.blob_scalar * self.l1_blob_base_fee_wei
        ) * size
        return (base + base * size // self.penalty_factor) // PRECISION

    def dominates(self, other: L1FeeParams) -> bool:
        """Whether every input is >= ``other``'s, so this never gives a lower fee for the same size."""
        return (
            self.l1_base_fee_wei >= other.l1_base_fee_wei
            and self.l1_blob_base_fee_wei >= other.l1_blob_base_fee_wei
            and self.commit_scalar >= other.commit_scalar
            and self.blob_scalar >= other.blob_scalar
            and self.penalty_factor <= other.penalty_factor
        )


#: Inputs of the local stand-in. Assumed, not read from Scroll: a 1 gwei L1 base fee, a 1 gwei blob base fee,
#: scalars that make a 200-byte transaction cost about 2e10 wei on L1, and a 50 000-byte penalty factor. On
#: a real chain read the oracle (:func:`read_l1_fee_params`).
LOCAL_L1_FEE_PARAMS = L1FeeParams(
    l1_base_fee_wei=10**9,
    l1_blob_base_fee_wei=10**9,
    commit_scalar=50_000_000,
    blob_scalar=50_000_000,
    penalty_factor=50_000,
)


def compress(raw_tx: bytes) -> bytes:
    """What Galileo charges for: the zstd-compressed transaction, or the raw one when that is not longer."""
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw_tx)
    return packed if len(packed) < len(raw_tx) else raw_tx


def l1_fee_wei(raw_tx: bytes, params: L1FeeParams) -> int:
    """The Galileo L1 data fee of a signed, RLP-encoded transaction, in wei.

    Args:
        raw_tx: The signed transaction as sent with ``eth_sendRawTransaction``.
        params: The oracle's inputs.

    Returns:
        Wei, as ``getL1Fee(compress(raw_tx))`` returns it.
    """
    return params.fee_wei(len(compress(raw_tx)))


def _word(w3: Web3, slot: int) -> int:
    return int.from_bytes(w3.eth.get_storage_at(_ORACLE, slot), "big")


def read_l1_fee_params(w3: Web3) -> L1FeeParams | None:
    """Read the oracle's Galileo inputs from its storage.

    Returns:
        The inputs, or ``None`` when the chain has no oracle at :data:`L1_GAS_PRICE_ORACLE` or it is not in
        Galileo mode (a chain that is not Scroll, or an anvil without the stand-in).
    """
    if not w3.eth.get_code(_ORACLE) or _word(w3, SLOTS["is_galileo"]) & 0xFF == 0:
        return None
    return L1FeeParams(
        l1_base_fee_wei=_word(w3, SLOTS["l1_base_fee_wei"]),
        l1_blob_base_fee_wei=_word(w3, SLOTS["l1_blob_base_fee_wei"]),
        commit_scalar=_word(w3, SLOTS["commit_scalar"]),
        blob_scalar=_word(w3, SLOTS["blob_scalar"]),
        penalty_factor=_word(w3, SLOTS["penalty_factor"]),
    )


def onchain_l1_fee_wei(w3: Web3, raw_tx: bytes) -> int | None:
    """The L1 fee of ``raw_tx`` as the chain's oracle computes it (``getL1Fee`` of the compressed bytes).

    Returns:
        Wei, or ``None`` when the chain has no Galileo oracle (see :func:`read_l1_fee_params`).
    """
    if read_l1_fee_params(w3) is None:
        return None
    oracle = w3.eth.contract(
        address=_ORACLE,
        abi=load_artifact("L1GasPriceOracle").abi,
    )
    return int(oracle.functions.getL1Fee(compress(raw_tx)).call())


def install_l1_gas_price_oracle(w3: Web3, params: L1FeeParams = LOCAL_L1_FEE_PARAMS) -> None:
    """Put the stand-in oracle at :data:`L1_GAS_PRICE_ORACLE` on an anvil chain, in Galileo mode.

    Uses anvil's ``anvil_setCode`` and ``anvil_setStorageAt``; call it again to change the inputs (as an
    L1 fee spike would).

    Args:
        w3: Client of a local anvil.
        params: The inputs to store.

    Raises:
        ValueError: The node refused a cheat-code call (not anvil).
    """
    code = load_artifact("L1GasPriceOracle").deployed_bytecode
    _cheat(w3, "anvil_setCode", [L1_GAS_PRICE_ORACLE, code])
    values = {
        "l1_base_fee_wei": params.l1_base_fee_wei,
        "l1_blob_base_fee_wei": params.l1_blob_base_fee_wei,
        "commit_scalar": params.commit_scalar,
        "blob_scalar": params.blob_scalar,
        "is_curie": 1,
        "penalty_factor": params.penalty_factor,
        "is_feynman": 1,
        "is_galileo": 1,
    }
    for name, value in values.items():
        _cheat(
            w3,
            "anvil_setStorageAt",
            [L1_GAS_PRICE_ORACLE, hex(SLOTS[name]), "0x" + value.to_bytes(32, "big").hex()],
        )


def _cheat(w3: Web3, method: str, params: list[Any]) -> None:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise ValueError(f"{method} failed: {response['error']}")
