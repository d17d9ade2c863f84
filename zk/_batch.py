"""Many logits proven together: one Groth16 proof for up to ``BATCH_ROWS`` rows of one request.

The circuit (``zk/circuits/batch.circom``) keeps three public signals whatever the batch size:
``[inputsHash, logitsHash, modelCommitment]``, the rows and the logits each hashed into one Poseidon
value, so the verifying gas (about 225k) is shared by the rows. The client recomputes both hashes from
the rows it sent and the logits it got (:func:`batch_hashes`, the ``BatchHashes`` witness calculator,
no keys needed) and then asks the version's ``BatchProofVerifier`` on chain. Fixed point as in
:mod:`zk._fixed`; unused rows of a batch are zero rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from zk._fixed import (
    decode_logit,
    encode_features,
    encode_model,
    fixed_logit,
    to_field,
)


@dataclass(frozen=True)
class BatchProof:
    """A proof of the logits of a batch of rows.

    Attributes:
        proof: 256 bytes, ``abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)``.
        instances: ``[inputsHash, logitsHash, modelCommitment]``.
        logits: The proven logits of the real rows, field elements (scale 2^56).
        proving_s: Seconds the worker spent on witness and proof.
        pad_logit: The logit of the zero padding rows (the intercept at scale 2^56, field element).
    """

    proof: bytes
    instances: tuple[int, int, int]
    logits: tuple[int, ...]
    proving_s: float
    pad_logit: int = 0

    @property
    def real_logits(self) -> list[float]:
        """The proven logits as real numbers."""
        return [decode_logit(v) for v in self.logits]


def _padded(rows: Sequence[Sequence[float]], n_rows: int, n_features: int) -> list[list[int]]:
    if not rows or len(rows) > n_rows:
        raise ValueError(f"a batch proof takes 1 to {n_rows} rows, not {len(rows)}")
    encoded = [encode_features(r) for r in rows]
    if any(len(r) != n_features for r in encoded):
        raise ValueError(f"every row needs {n_features} features")
    return encoded + [[0] * n_features] * (n_rows - len(encoded))


def batch_input(
    keys: Any, weights: Sequence[float], intercept: float, rows: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """The batch circuit's input signals (decimal field elements), rows padded with zero rows.

    Raises:
        ValueError: No rows, more than the circuit's rows, or a row of the wrong length.
        zk.FixedPointRangeError: A value outside the fixed-point range.
    """
    w, b = encode_model(weights, intercept)
    x = _padded(rows, keys.n_rows, keys.n_features)
    return {
        "x": [[str(to_field(v)) for v in r] for r in x],
        "w": [str(to_field(v)) for v in w],
        "b": str(to_field(b)),
    }


def _call(request: dict[str, Any]) -> dict[str, Any]:
    from zk._training import _pool_call

    return _pool_call(request)


def prove_batch(
    keys: Any, weights: Sequence[float], intercept: float, rows: Sequence[Sequence[float]]
) -> BatchProof:
    """Prove the logits of up to ``keys.n_rows`` rows with one proof.

    Args:
        keys: ``zk.ensure_batch_keys(F)``.
        weights: Coefficients, shape (F,).
        intercept: Bias.
        rows: Features, shape (n, F), n <= keys.n_rows.

    Raises:
        zk.ProofError: The worker failed.
        ValueError: Shapes.
        zk.FixedPointRangeError: A value outside the fixed-point range.
    """
    answer = _call(
        {
            "op": "prove",
            "wasm": str(keys.wasm),
            "zkey": str(keys.zkey),
            "input": batch_input(keys, weights, intercept, rows),
        }
    )
    w, b = encode_model(weights, intercept)
    logits = tuple(to_field(fixed_logit(w, b, encode_features(r))) for r in rows)
    public = tuple(int(v) for v in answer["public"])
    return BatchProof(
        bytes.fromhex(str(answer["proof"])[2:]),
        (public[0], public[1], public[2]),
        logits,
        float(answer["proving_s"]),
        to_field(b),
    )


def batch_hashes(
    keys: Any,
    rows: Sequence[Sequence[float]],
    logits: Sequence[int],
    intercept: float | None = None,
    *,
    pad_logit: int | None = None,
) -> tuple[int, int]:
    """``(inputsHash, logitsHash)`` of rows and claimed logits, as the batch circuit hashes them.

    Args:
        keys: ``zk.ensure_batch_hashes(F)`` or ``zk.ensure_batch_keys(F)`` (only its
            ``hashes_wasm``, ``n_rows`` and ``n_features`` are used).
        rows: The rows sent, shape (n, F).
        logits: The logits received, field elements (scale 2^56), one per row.
        intercept: The model's published intercept: a zero padding row's logit is the intercept.
        pad_logit: Instead of ``intercept``: the padding rows' logit as a field element (the
            intercept at scale 2^56; a wrong value only makes the hashes differ from the proof's).

    Raises:
        ValueError: Shapes, or neither/both of ``intercept`` and ``pad_logit``.
        zk.ProofError: The worker failed.
    """
    if len(logits) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(logits)} logits")
    x = _padded(rows, keys.n_rows, keys.n_features)
    if (intercept is None) == (pad_logit is None):
        raise ValueError("give either intercept or pad_logit")
    pad = (
        int(pad_logit) % (1 << 256)
        if pad_logit is not None
        else to_field(encode_model([0.0] * keys.n_features, float(intercept or 0.0))[1])
    )
    padded = [int(v) for v in logits] + [pad] * (keys.n_rows - len(logits))
    answer = _call(
        {
            "op": "outputs",
            "wasm": str(keys.hashes_wasm),
            "zkey": str(keys.hashes_wasm),
            "n_outputs": 2,
            "input": {
                "x": [[str(to_field(v)) for v in r] for r in x],
                "logit": [str(v) for v in padded],
            },
        }
    )
    return int(answer["outputs"][0]), int(answer["outputs"][1])


def deploy_batch_verifier(
    transactor: Any, deployment: Any, n_features: int, model_commitment: int
) -> str:
    """Deploy a model version's ``BatchProofVerifier`` (local chains: development keys).

    Raises:
        KeyError: The deployment has no ``BatchGroth16Verifier<F>``.
    """
    groth16 = deployment.addresses[f"BatchGroth16Verifier{n_features}"]
    contract = transactor.deploy("BatchProofVerifier", groth16, model_commitment)
    return str(Web3.to_checksum_address(contract.address))
