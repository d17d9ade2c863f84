// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {DataRegistry} from "../DataRegistry.sol";
import {SubnetRegistry} from "../SubnetRegistry.sol";

/// @title TrainingChunkVerifier
/// @notice Records data holders' chunked proofs of training: each proof covers R committed rows and one link
/// of the hash chain whose last value is the holder's root in `DataRegistry` (`zk/_training.py`, chunks).
/// @dev One instance per feature count F, forwarding to the Groth16 verifier of
/// `zk/circuits/training_chunk.circom` (`TrainingChunkGroth16Verifier<F>`). Public signals (3F + 5):
/// `[n, grad_0 .. grad_F, sumsq_0 .. sumsq_{F-1}, sumx_0 .. sumx_{F-1}, linkOut, modelCommitment, linkIn]`.
/// `submitChunk` refuses a chunk unless the caller is a contributor of the model version, the commitment is
/// the caller's and was made no later than the version's publication, the model commitment is the version's,
/// the chunk continues the caller's chain (its `linkIn` is 0 to start a chain, else the previous chunk's
/// `linkOut` under the same commitment) and the Groth16 check passes. A chain is complete when its last link
/// equals the commitment's root (`chainOf`); `twopm verify training` re-checks every recorded chunk (event
/// `TrainingChunkProven`), walks the chain, adds the partial sums and applies the row-count and stationarity
/// checks.
contract TrainingChunkVerifier {
    /// @notice The Groth16 verifier of the chunk circuit for `numFeatures` features.
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

    /// @notice A holder's chain of chunks for one model version, as far as it has been submitted.
    struct Chain {
        uint256 commitmentId;
        uint256 link;
        uint64 chunks;
        uint64 rows;
    }

    mapping(uint256 subnetId => mapping(uint64 version => mapping(address holder => Chain))) private _chains;

    /// @notice Emitted for every accepted chunk, in chain order.
    event TrainingChunkProven(
        uint256 indexed subnetId,
        uint64 indexed version,
        address indexed holder,
        uint256 commitmentId,
        uint64 index,
        bytes proof,
        uint256[] instances
    );

    /// @notice The Groth16 verifier has no code or the feature count is zero.
    error TrainingChunkInvalidSetup(address groth16Verifier, uint256 numFeatures);
    /// @notice The caller is not a contributor of the model version.
    error TrainingChunkNotContributor(uint256 subnetId, uint64 version, address holder);
    /// @notice The commitment belongs to someone else.
    error TrainingChunkNotYourCommitment(uint256 commitmentId, address holder);
    /// @notice The commitment was made after the model version was published.
    error TrainingChunkCommitmentTooLate(uint256 commitmentId, uint64 committedAt, uint64 publishedAt);
    /// @notice The version has no model commitment in SubnetRegistry.
    error TrainingChunkNoModelCommitment(uint256 subnetId, uint64 version);
    /// @notice The chunk is for other parameters than the version's.
    error TrainingChunkWrongModel(uint256 committed, uint256 proven);
    /// @notice The chunk does not continue the caller's chain (dropped, repeated or reordered chunk).
    error TrainingChunkOutOfOrder(uint256 expectedLinkIn, uint256 linkIn);
    /// @notice The Groth16 check failed (or the proof or signals are malformed).
    error TrainingChunkInvalid();

    /// @param groth16Verifier_ `TrainingChunkGroth16Verifier<F>`.
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
            revert TrainingChunkInvalidSetup(groth16Verifier_, numFeatures_);
        }
        groth16Verifier = groth16Verifier_;
        numFeatures = numFeatures_;
        dataRegistry = dataRegistry_;
        subnetRegistry = subnetRegistry_;
        verifyGasLimit = 300_000 + 12_000 * (3 * numFeatures_ + 5);
        _selector = bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[",
                    Strings.toString(3 * numFeatures_ + 5),
                    "])"
                )
            )
        );
    }

    /// @notice Whether `proof` is a valid Groth16 proof of the chunk circuit for `instances` (no registry or
    /// chain checks: `submitChunk` makes those).
    /// @param proof 256 bytes, `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`.
    /// @param instances The 3F + 5 public signals.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) public view returns (bool) {
        if (proof.length != 256 || instances.length != 3 * numFeatures + 5) return false;
        (bool ok, bytes memory ret) =
            groth16Verifier.staticcall{gas: verifyGasLimit}(abi.encodePacked(_selector, proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }

    /// @notice Records the caller's next chunk for a model version; reverts unless it holds.
    /// @param subnetId The subnet.
    /// @param version The published model version.
    /// @param commitmentId The caller's DataRegistry commitment the chain ends at.
    /// @param proof 256 proof bytes.
    /// @param instances The public signals (3F + 5).
    function submitChunk(
        uint256 subnetId,
        uint64 version,
        uint256 commitmentId,
        bytes calldata proof,
        uint256[] calldata instances
    ) external {
        uint256 f = numFeatures;
        if (instances.length != 3 * f + 5) revert TrainingChunkInvalid();
        SubnetRegistry.ModelVersion memory model = subnetRegistry.modelOf(subnetId, version);
        bool contributor = false;
        for (uint256 i = 0; i < model.contributors.length; i++) {
            if (model.contributors[i] == msg.sender) {
                contributor = true;
                break;
            }
        }
        if (!contributor) revert TrainingChunkNotContributor(subnetId, version, msg.sender);
        (address holder,, uint64 committedAt) = dataRegistry.commitmentOf(commitmentId);
        if (holder != msg.sender) revert TrainingChunkNotYourCommitment(commitmentId, msg.sender);
        if (committedAt > model.publishedAt) {
            revert TrainingChunkCommitmentTooLate(commitmentId, committedAt, model.publishedAt);
        }
        (, uint256 modelCommitment) = subnetRegistry.modelVerifierOf(subnetId, version);
        if (modelCommitment == 0) revert TrainingChunkNoModelCommitment(subnetId, version);
        if (instances[3 * f + 3] != modelCommitment) {
            revert TrainingChunkWrongModel(modelCommitment, instances[3 * f + 3]);
        }
        Chain storage chain = _chains[subnetId][version][msg.sender];
        uint256 linkIn = instances[3 * f + 4];
        if (linkIn != 0) {
            if (chain.chunks == 0 || chain.commitmentId != commitmentId || chain.link != linkIn) {
                revert TrainingChunkOutOfOrder(chain.commitmentId == commitmentId ? chain.link : 0, linkIn);
            }
        }
        if (!verifyProof(proof, instances)) revert TrainingChunkInvalid();
        if (linkIn == 0) {
            chain.commitmentId = commitmentId;
            chain.chunks = 0;
            chain.rows = 0;
        }
        chain.link = instances[3 * f + 2];
        chain.rows += uint64(instances[0]);
        emit TrainingChunkProven(subnetId, version, msg.sender, commitmentId, chain.chunks, proof, instances);
        chain.chunks += 1;
    }

    /// @notice The chain `holder` has submitted for a model version, and whether it ends at its commitment.
    /// @return chain Commitment id, last link, chunks and rows so far (zero values when none).
    /// @return complete The last link is the commitment's root.
    function chainOf(uint256 subnetId, uint64 version, address holder)
        external
        view
        returns (Chain memory chain, bool complete)
    {
        chain = _chains[subnetId][version][holder];
        if (chain.chunks == 0) return (chain, false);
        (, uint256 root,) = dataRegistry.commitmentOf(chain.commitmentId);
        complete = chain.link == root;
    }
}
