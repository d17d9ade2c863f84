// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BatchProofVerifier
/// @notice Checks a proof that one model version computed the logits of a batch of rows, behind the ABI every
/// 2PM verifier answers: `verifyProof(bytes proof, uint256[] instances) returns (bool)`.
/// @dev Forwards to the Groth16 verifier of `zk/circuits/batch.circom` (`BatchGroth16Verifier<F>`, three
/// public signals `[inputsHash, logitsHash, modelCommitment]`) after checking the commitment is this
/// version's. The caller checks the two hashes against the rows it sent and the logits it got. A malformed
/// or wrong proof yields `false`; the forwarded call gets bounded gas.
contract BatchProofVerifier {
    /// @notice The Groth16 verifier of the batch circuit.
    address public immutable groth16Verifier;
    /// @notice Commitment to the model version's parameters (Poseidon chain, as in LogitProofVerifier).
    uint256 public immutable modelCommitment;
    /// @notice Most gas handed to the Groth16 verifier per call.
    uint256 public constant VERIFY_GAS_LIMIT = 400_000;

    bytes4 private constant _SELECTOR =
        bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[3])"));

    /// @notice The Groth16 verifier has no code or the commitment is zero.
    error BatchProofVerifierInvalidSetup(address groth16Verifier, uint256 modelCommitment);

    /// @param groth16Verifier_ `BatchGroth16Verifier<F>`.
    /// @param modelCommitment_ The version's parameter commitment (non-zero).
    constructor(address groth16Verifier_, uint256 modelCommitment_) {
        if (groth16Verifier_.code.length == 0 || modelCommitment_ == 0) {
            revert BatchProofVerifierInvalidSetup(groth16Verifier_, modelCommitment_);
        }
        groth16Verifier = groth16Verifier_;
        modelCommitment = modelCommitment_;
    }

    /// @notice Whether `proof` shows that this version's parameters map the rows hashed in `instances[0]` to
    /// the logits hashed in `instances[1]`.
    /// @param proof 256 bytes, `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`.
    /// @param instances `[inputsHash, logitsHash, modelCommitment]`.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {
        if (proof.length != 256 || instances.length != 3 || instances[2] != modelCommitment) return false;
        (bool ok, bytes memory ret) =
            groth16Verifier.staticcall{gas: VERIFY_GAS_LIMIT}(abi.encodePacked(_SELECTOR, proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }
}
