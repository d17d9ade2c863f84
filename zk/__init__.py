"""Zero-knowledge proofs that a subnet's published model produced a served logit.

A Groth16 circuit (circom, ``zk/circuits/proven_logit.circom``) proves ``logit = w . x + b`` in fixed
point with the weights as a private input whose Poseidon commitment is public and recorded on chain for
the model version, and the features hashed into one public signal (:func:`inputs_hash`); snarkjs makes the proofs in Node worker processes (:class:`ProverPool`); a per-version
``LogitProofVerifier`` contract answers ``verifyProof(bytes, uint256[]) returns (bool)``.

Proof of training (:mod:`zk._training`): data holders commit to their rows in ``DataRegistry``, prove
their local sums at the published model with ``zk/circuits/training.circom``, submit the proofs to
``TrainingProofVerifier``, and anyone checks the whole fit with :func:`verify_training`.

The trusted setup made here is for development only (see :mod:`zk._setup`).
"""

from zk._batch import BatchProof, batch_hashes, deploy_batch_verifier, prove_batch
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
    inputs_hash,
    model_commitment,
)
from zk._setup import (
    BATCH_ROWS,
    SUPPORTED_FEATURE_COUNTS,
    BatchCircuitKeys,
    CircuitKeys,
    SetupError,
    TrainingCircuitKeys,
    default_cache_dir,
    ensure_batch_keys,
    ensure_inputs_hash_wasm,
    ensure_keys,
    ensure_training_keys,
    verifier_contract_name,
)
from zk._training import (
    SIGMOID_ERROR,
    TRAINING_SHAPES,
    EncodedRows,
    TrainingProof,
    TrainingProofError,
    TrainingSums,
    TrainingVerification,
    commit_data,
    data_root,
    encode_rows,
    fixed_training_sums,
    new_salt,
    prove_training,
    stationarity_tolerance,
    submit_training_proof,
    training_proof_verifier_name,
    verify_training,
)

__all__ = [
    "BATCH_ROWS",
    "FIELD_MODULUS",
    "LOGIT_SCALE_BITS",
    "PROOF_BYTES",
    "SIGMOID_ERROR",
    "SUPPORTED_FEATURE_COUNTS",
    "TRAINING_SHAPES",
    "VERIFY_CALL_GAS",
    "VERIFY_PROOF_ABI",
    "W_SCALE_BITS",
    "X_BITS",
    "X_SCALE_BITS",
    "BatchCircuitKeys",
    "BatchProof",
    "CircuitKeys",
    "EncodedRows",
    "FixedPointRangeError",
    "LogitProof",
    "OnChainCheck",
    "ProofError",
    "ProverBusy",
    "ProverPool",
    "SetupError",
    "TrainingCircuitKeys",
    "TrainingProof",
    "TrainingProofError",
    "TrainingSums",
    "TrainingVerification",
    "batch_hashes",
    "check_on_chain",
    "circuit_input",
    "commit_data",
    "data_root",
    "decode_logit",
    "default_cache_dir",
    "deploy_batch_verifier",
    "deploy_model_verifier",
    "encode_features",
    "encode_model",
    "encode_rows",
    "ensure_batch_keys",
    "ensure_inputs_hash_wasm",
    "ensure_keys",
    "ensure_training_keys",
    "fixed_logit",
    "fixed_training_sums",
    "from_field",
    "inputs_hash",
    "model_commitment",
    "model_verifier_of",
    "new_salt",
    "prove_batch",
    "prove_training",
    "record_model_verifier",
    "stationarity_tolerance",
    "submit_training_proof",
    "to_field",
    "training_proof_verifier_name",
    "verifier_contract_name",
    "verify_training",
]
