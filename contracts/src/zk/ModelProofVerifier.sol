// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ModelProofVerifier
/// @notice The one verifier `SubnetRegistry.setModelVerifier` records for a model version when the version
/// can be proven one row at a time and in batches: `verifyProof(bytes proof, uint256[] instances)` routes
/// to the version's `LogitProofVerifier` or `BatchProofVerifier` by where the version's commitment sits.
/// @dev Both circuits have three public signals, so the count cannot tell them apart; the commitment's
/// position does: a one-row proof carries `[logit, modelCommitment, inputsHash]`, a batch proof
/// `[inputsHash, logitsHash, modelCommitment]` (zk/circuits/proven_logit.circom, batch.circom). Both other
/// signals are Poseidon hashes of a different arity (or a logit), so neither can equal the commitment
/// unless Poseidon collides. Anything else is `false`. The adapters bound the gas they forward.
contract ModelProofVerifier {
    /// @notice The version's one-row verifier (`LogitProofVerifier`).
    address public immutable logitVerifier;
    /// @notice The version's batch verifier (`BatchProofVerifier`); zero when the shape has no batch circuit.
    address public immutable batchVerifier;
    /// @notice The version's parameter commitment (both adapters check it too).
    uint256 public immutable modelCommitment;

    /// @notice An adapter has no code, or the commitment is zero.
    error ModelProofVerifierInvalidSetup(address logitVerifier, address batchVerifier, uint256 modelCommitment);

    /// @param logitVerifier_ The version's `LogitProofVerifier`.
    /// @param batchVerifier_ The version's `BatchProofVerifier`, or zero.
    /// @param modelCommitment_ The version's commitment (non-zero).
    constructor(address logitVerifier_, address batchVerifier_, uint256 modelCommitment_) {
        if (
            logitVerifier_.code.length == 0 || (batchVerifier_ != address(0) && batchVerifier_.code.length == 0)
                || modelCommitment_ == 0
        ) {
            revert ModelProofVerifierInvalidSetup(logitVerifier_, batchVerifier_, modelCommitment_);
        }
        logitVerifier = logitVerifier_;
        batchVerifier = batchVerifier_;
        modelCommitment = modelCommitment_;
    }

    /// @notice Whether `proof` is a valid one-row or batch proof of this model version.
    /// @param proof 256 bytes, `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`.
    /// @param instances `[logit, modelCommitment, inputsHash]` or `[inputsHash, logitsHash, modelCommitment]`.
    /// @return True only for a valid proof of this version.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {
        if (instances.length != 3) return false;
        address target;
        if (instances[1] == modelCommitment) target = logitVerifier;
        else if (instances[2] == modelCommitment) target = batchVerifier;
        if (target == address(0)) return false;
        (bool ok, bytes memory ret) =
            target.staticcall(abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }
}
