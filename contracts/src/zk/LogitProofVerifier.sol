// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title LogitProofVerifier
/// @notice Checks a proof that one model version of a subnet computed a logit, behind the ABI every 2PM
/// verifier answers: `verifyProof(bytes proof, uint256[] instances) returns (bool)`.
/// @dev One instance per model version, recorded in `SubnetRegistry.setModelVerifier`. It forwards to the
/// Groth16 verifier of the circuit for `numFeatures` features (`LogitGroth16Verifier<F>`, exported by snarkjs
/// from `zk/circuits/proven_logit.circom`) after checking that the proof is for this version's parameters.
///
/// `proof` is `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)` (256 bytes, G2 coordinates in the
/// order snarkjs's Solidity verifier takes). `instances` are the circuit's public signals, outputs first:
/// `[logit, modelCommitment, inputsHash]`, each a BN254 scalar field element (fixed point, see
/// `zk/_fixed.py`); `inputsHash` is the Poseidon chain over the fixed-point features, which the caller
/// recomputes from the row it sent (`zk.inputs_hash`): this contract cannot know the features. A malformed or wrong proof yields `false`; the forwarded call gets at most
/// `verifyGasLimit` gas, because the EIP-196 precompiles consume all gas given to them on a point off the
/// curve.
contract LogitProofVerifier {
    /// @notice The Groth16 verifier of the circuit for `numFeatures` features.
    address public immutable groth16Verifier;
    /// @notice Features the model takes (F).
    uint256 public immutable numFeatures;
    /// @notice Commitment to the model version's parameters (Poseidon chain over the fixed-point weights
    /// and intercept); proofs must carry it as their second public signal.
    uint256 public immutable modelCommitment;
    /// @notice Public signals of every proof: logit, model commitment, inputs hash.
    uint256 public constant NUM_INSTANCES = 3;
    /// @notice Most gas handed to the Groth16 verifier per call.
    uint256 public immutable verifyGasLimit;

    bytes4 private immutable _selector;

    /// @notice The Groth16 verifier has no code, or the shape or commitment is zero.
    error LogitProofVerifierInvalidSetup(address groth16Verifier, uint256 numFeatures, uint256 modelCommitment);

    /// @param groth16Verifier_ `LogitGroth16Verifier<F>` for F = `numFeatures_`.
    /// @param numFeatures_ Features of the model, F >= 1.
    /// @param modelCommitment_ The version's parameter commitment (non-zero).
    constructor(address groth16Verifier_, uint256 numFeatures_, uint256 modelCommitment_) {
        if (groth16Verifier_.code.length == 0 || numFeatures_ == 0 || modelCommitment_ == 0) {
            revert LogitProofVerifierInvalidSetup(groth16Verifier_, numFeatures_, modelCommitment_);
        }
        groth16Verifier = groth16Verifier_;
        numFeatures = numFeatures_;
        modelCommitment = modelCommitment_;
        // Groth16 with 3 public signals costs ~200k gas whatever F is (measured, docs/proofs.md); the
        // bound leaves room for it and stops a bad proof from burning a caller's whole allowance.
        verifyGasLimit = 300_000 + 12_000 * NUM_INSTANCES;
        _selector = bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[",
                    Strings.toString(NUM_INSTANCES),
                    "])"
                )
            )
        );
    }

    /// @notice Whether `proof` shows that this model version's parameters map inputs whose hash is in
    /// `instances` to the logit in `instances`.
    /// @param proof 256 bytes, `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`.
    /// @param instances `[logit, modelCommitment, inputsHash]`, field elements.
    /// @return True only for a valid proof of this version; false for anything else.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {
        if (proof.length != 256 || instances.length != NUM_INSTANCES) return false;
        if (instances[1] != modelCommitment) return false;
        // Static arguments (uint256[2], uint256[2][2], uint256[2], uint256[N]) are ABI-encoded as consecutive
        // words, which is exactly the proof bytes followed by the packed instances.
        (bool ok, bytes memory ret) =
            groth16Verifier.staticcall{gas: verifyGasLimit}(abi.encodePacked(_selector, proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }
}
