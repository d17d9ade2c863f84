"""Zero-knowledge proofs that a subnet's published model produced a served logit.

A Groth16 circuit (circom, ``zk/circuits/logit.circom``) proves ``logit = w . x + b`` in fixed point
with the weights as a private input whose Poseidon commitment is public and recorded on chain for the
model version; snarkjs makes the proofs in Node worker processes (:class:`ProverPool`); a per-version
``LogitProofVerifier`` contract answers ``verifyProof(bytes, uint256[]) returns (bool)``.

The trusted setup made here is for development only (see :mod:`zk._setup`).
"""

from zk._chain import (
    VERIFY_CALL_GAS,
    VERIFY_PROOF_ABI,
    OnChainCheck,
    check_on_chain,
    deploy_model_verifier,
    model_verifier_of,
    record_model_verifier,
)
from zk._fixed import (
    FIELD_MODULUS,
    LOGIT_SCALE_BITS,
    W_SCALE_BITS,
    X_BITS,
    X_SCALE_BITS,
    FixedPointRangeError,
    decode_logit,
    encode_features,
    encode_model,
    fixed_logit,
    from_field,
    to_field,
)
from zk._prover import (
    PROOF_BYTES,
    LogitProof,
    ProofError,
    ProverBusy,
    ProverPool,
    circuit_input,
    model_commitment,
)
from zk._setup import (
    SUPPORTED_FEATURE_COUNTS,
    CircuitKeys,
    SetupError,
    default_cache_dir,
    ensure_keys,
    verifier_contract_name,
)

__all__ = [
    "FIELD_MODULUS",
    "LOGIT_SCALE_BITS",
    "PROOF_BYTES",
    "SUPPORTED_FEATURE_COUNTS",
    "VERIFY_CALL_GAS",
    "VERIFY_PROOF_ABI",
    "W_SCALE_BITS",
    "X_BITS",
    "X_SCALE_BITS",
    "CircuitKeys",
    "FixedPointRangeError",
    "LogitProof",
    "OnChainCheck",
    "ProofError",
    "ProverBusy",
    "ProverPool",
    "SetupError",
    "check_on_chain",
    "circuit_input",
    "decode_logit",
    "default_cache_dir",
    "deploy_model_verifier",
    "encode_features",
    "encode_model",
    "ensure_keys",
    "fixed_logit",
    "from_field",
    "model_commitment",
    "model_verifier_of",
    "record_model_verifier",
    "to_field",
    "verifier_contract_name",
]
