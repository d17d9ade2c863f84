// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {DataRegistry} from "../DataRegistry.sol";
import {SubnetRegistry} from "../SubnetRegistry.sol";

/// @title TrainingProofVerifier
/// @notice Records data holders' proofs that their local sums at a published model were computed on the rows
/// they committed to in `DataRegistry` (proof of training, `zk/_training.py`).
/// @dev One instance per feature count F, forwarding to the Groth16 verifier of
/// `zk/circuits/training.circom` (`TrainingGroth16Verifier<F>`). Public signals, outputs first:
/// `[n, grad_0 .. grad_F, sumsq_0 .. sumsq_{F-1}, dataRoot, modelCommitment]` (2F + 4 field elements).
/// `submit` refuses a proof unless the caller is a contributor of the model version, the commitment is the
/// caller's and was made no later than the version's publication, the proof's data root is that commitment's
/// root, its model commitment is the version's in `SubnetRegistry`, and the Groth16 check passes. What it
/// records (event `TrainingProven`, with the proof and public signals) is what `twopm verify training` sums:
/// row counts against the published shares and the gradient against the stationarity tolerance.
contract TrainingProofVerifier {
    /// @notice The Groth16 verifier of the training circuit for `numFeatures` features.
    address public immutable groth16Verifier;
    /// @notice Features F of the circuit.
    uint256 public immutable numFeatures;
    /// @notice Where holders commit to their rows.
    DataRegistry public immutable dataRegistry;
    /// @notice Where model versions, contributors and model commitments live.
    SubnetRegistry public immutable subnetRegistry;
    /// @notice Most gas handed to the Groth16 verifier per call (bounded: an off-curve point burns it all).
    uint256 public immutable verifyGasLimit;

    bytes4 private immutable _selector;

    /// @notice A recorded proof.
    struct Proven {
        uint256 commitmentId;
        bytes32 instancesHash;
        uint64 provenAt;
    }

    mapping(uint256 subnetId => mapping(uint64 version => mapping(address holder => Proven))) private _proven;

    /// @notice Emitted when `holder` proves its local sums for a model version.
    event TrainingProven(
        uint256 indexed subnetId,
        uint64 indexed version,
        address indexed holder,
        uint256 commitmentId,
        bytes proof,
        uint256[] instances
    );

    /// @notice The Groth16 verifier has no code or the feature count is zero.
    error TrainingProofInvalidSetup(address groth16Verifier, uint256 numFeatures);
    /// @notice The caller is not a contributor of the model version.
    error TrainingProofNotContributor(uint256 subnetId, uint64 version, address holder);
    /// @notice The commitment belongs to someone else.
    error TrainingProofNotYourCommitment(uint256 commitmentId, address holder);
    /// @notice The commitment was made after the model version was published.
    error TrainingProofCommitmentTooLate(uint256 commitmentId, uint64 committedAt, uint64 publishedAt);
    /// @notice The version has no model commitment in SubnetRegistry.
    error TrainingProofNoModelCommitment(uint256 subnetId, uint64 version);
    /// @notice The proof's data root is not the commitment's root.
    error TrainingProofWrongDataRoot(uint256 committed, uint256 proven);
    /// @notice The proof is for other parameters than the version's.
    error TrainingProofWrongModel(uint256 committed, uint256 proven);
    /// @notice The Groth16 check failed (or the proof or signals are malformed).
    error TrainingProofInvalid();

    /// @param groth16Verifier_ `TrainingGroth16Verifier<F>`.
    /// @param numFeatures_ F >= 1.
    /// @param dataRegistry_ The DataRegistry.
    /// @param subnetRegistry_ The SubnetRegistry.
    constructor(
        address groth16Verifier_,
        uint256 numFeatures_,
        DataRegistry dataRegistry_,
        SubnetRegistry subnetRegistry_
    ) {
        if (groth16Verifier_.code.length == 0 || numFeatures_ == 0) {
            revert TrainingProofInvalidSetup(groth16Verifier_, numFeatures_);
        }
        groth16Verifier = groth16Verifier_;
        numFeatures = numFeatures_;
        dataRegistry = dataRegistry_;
        subnetRegistry = subnetRegistry_;
        verifyGasLimit = 300_000 + 12_000 * (2 * numFeatures_ + 4);
        _selector = bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[",
                    Strings.toString(2 * numFeatures_ + 4),
                    "])"
                )
            )
        );
    }

    /// @notice Whether `proof` is a valid Groth16 proof of the training circuit for `instances` (no registry
    /// checks: `submit` makes those).
    /// @param proof 256 bytes, `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`.
    /// @param instances `[n, grad_0 .. grad_F, sumsq_0 .. sumsq_{F-1}, dataRoot, modelCommitment]`.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) public view returns (bool) {
        if (proof.length != 256 || instances.length != 2 * numFeatures + 4) return false;
        (bool ok, bytes memory ret) =
            groth16Verifier.staticcall{gas: verifyGasLimit}(abi.encodePacked(_selector, proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }

    /// @notice Records the caller's proof of its local sums for a model version; reverts unless it holds.
    /// @param subnetId The subnet.
    /// @param version The published model version.
    /// @param commitmentId The caller's DataRegistry commitment the sums were computed on.
    /// @param proof 256 proof bytes.
    /// @param instances The public signals (2F + 4).
    function submit(
        uint256 subnetId,
        uint64 version,
        uint256 commitmentId,
        bytes calldata proof,
        uint256[] calldata instances
    ) external {
        SubnetRegistry.ModelVersion memory model = subnetRegistry.modelOf(subnetId, version);
        bool contributor = false;
        for (uint256 i = 0; i < model.contributors.length; i++) {
            if (model.contributors[i] == msg.sender) {
                contributor = true;
                break;
            }
        }
        if (!contributor) revert TrainingProofNotContributor(subnetId, version, msg.sender);
        (address holder, uint256 root, uint64 committedAt) = dataRegistry.commitmentOf(commitmentId);
        if (holder != msg.sender) revert TrainingProofNotYourCommitment(commitmentId, msg.sender);
        if (committedAt > model.publishedAt) {
            revert TrainingProofCommitmentTooLate(commitmentId, committedAt, model.publishedAt);
        }
        if (instances.length != 2 * numFeatures + 4) revert TrainingProofInvalid();
        if (instances[2 * numFeatures + 2] != root) {
            revert TrainingProofWrongDataRoot(root, instances[2 * numFeatures + 2]);
        }
        (, uint256 modelCommitment) = subnetRegistry.modelVerifierOf(subnetId, version);
        if (modelCommitment == 0) revert TrainingProofNoModelCommitment(subnetId, version);
        if (instances[2 * numFeatures + 3] != modelCommitment) {
            revert TrainingProofWrongModel(modelCommitment, instances[2 * numFeatures + 3]);
        }
        if (!verifyProof(proof, instances)) revert TrainingProofInvalid();
        _proven[subnetId][version][msg.sender] =
            Proven(commitmentId, keccak256(abi.encodePacked(instances)), uint64(block.timestamp));
        emit TrainingProven(subnetId, version, msg.sender, commitmentId, proof, instances);
    }

    /// @notice The proof `holder` recorded for a model version (zero values when none).
    function provenOf(uint256 subnetId, uint64 version, address holder) external view returns (Proven memory) {
        return _proven[subnetId][version][holder];
    }
}
