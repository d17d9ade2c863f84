// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {DataRegistry} from "../DataRegistry.sol";
import {SubnetRegistry} from "../SubnetRegistry.sol";

/// @title TrainingChunkVerifier
/// @notice Records data holders' chunked proofs of training: each proof covers R committed rows, one link
/// of the hash chain whose last value is the holder's root in `DataRegistry`, and one step of the holder's
/// private running sums (`zk/_training.py`, chunks).
/// @dev One instance per feature count F, forwarding to the Groth16 verifier of
/// `zk/circuits/training_chunk.circom` (`TrainingChunkGroth16Verifier<F>`). Public signals (5):
/// `[linkOut, accOut, modelCommitment, linkIn, accIn]`; `acc` is a salted Poseidon commitment to the packed
/// running sums (0 = the fixed start, sums 0). `submitChunk` refuses a chunk unless the caller is a
/// contributor of the model version, the commitment is the caller's and was made no later than the
/// version's publication, the model commitment is the version's, the chunk continues the caller's chain
/// (`linkIn` and `accIn` both 0 to start a chain, else the previous chunk's `linkOut` and `accOut` under the
/// same commitment), the chain stays within `MAX_CHUNKS` and the Groth16 check passes. After the last chunk
/// the holder opens its totals (`openTotals`: the last accumulator's salt and packed sums, recorded in
/// `TrainingTotalsOpened`); the Poseidon recompute of that opening is done off chain by
/// `twopm verify training`, which also re-checks every recorded chunk (`TrainingChunkProven`) and walks both
/// chains.
contract TrainingChunkVerifier {
    /// @notice Public signals of one chunk proof.
    uint256 public constant NUM_SIGNALS = 5;
    /// @notice Most chunks in one chain: the packed running sums cannot carry between slots below it
    /// (`CHUNK_COUNT_BITS` = 8 in `zk/_training.py`).
    uint64 public constant MAX_CHUNKS = 256;
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
        uint256 acc;
        uint64 chunks;
    }

    mapping(uint256 subnetId => mapping(uint64 version => mapping(address holder => Chain))) private _chains;

    /// @notice A chunk proof was accepted; `index` is its position in the holder's chain.
    event TrainingChunkProven(
        uint256 indexed subnetId,
        uint64 indexed version,
        address indexed holder,
        uint256 commitmentId,
        uint64 index,
        bytes proof,
        uint256[] instances
    );

    /// @notice A holder opened the running sums of its complete chain of `chunks` chunks, ending at `acc`.
    event TrainingTotalsOpened(
        uint256 indexed subnetId,
        uint64 indexed version,
        address indexed holder,
        uint256 commitmentId,
        uint64 chunks,
        uint256 acc,
        uint256 salt,
        uint256[] packed
    );

    error TrainingChunkInvalidSetup(address groth16Verifier, uint256 numFeatures);
    error TrainingChunkNotContributor(uint256 subnetId, uint64 version, address holder);
    error TrainingChunkNotYourCommitment(uint256 commitmentId, address holder);
    error TrainingChunkCommitmentTooLate(uint256 commitmentId, uint64 committedAt, uint64 publishedAt);
    error TrainingChunkNoModelCommitment(uint256 subnetId, uint64 version);
    error TrainingChunkWrongModel(uint256 committed, uint256 proven);
    error TrainingChunkOutOfOrder(uint256 expectedLinkIn, uint256 linkIn);
    error TrainingChunkAccumulatorMismatch(uint256 expectedAccIn, uint256 accIn);
    error TrainingChunkChainTooLong(uint64 chunks);
    error TrainingChunkChainIncomplete(uint256 subnetId, uint64 version, address holder);
    error TrainingChunkBadOpening(uint256 expectedLength, uint256 length);
    error TrainingChunkInvalid();

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
        verifyGasLimit = 300_000 + 12_000 * NUM_SIGNALS;
        _selector = bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[",
                    Strings.toString(NUM_SIGNALS),
                    "])"
                )
            )
        );
    }

    /// @notice The Groth16 check of one chunk proof alone (no registry checks), for verifiers off chain.
    /// @param proof `abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)`, 256 bytes.
    /// @param instances The 5 public signals.
    /// @return Whether the proof verifies (false for malformed input).
    function verifyProof(bytes calldata proof, uint256[] calldata instances) public view returns (bool) {
        if (proof.length != 256 || instances.length != NUM_SIGNALS) return false;
        (bool ok, bytes memory ret) =
            groth16Verifier.staticcall{gas: verifyGasLimit}(abi.encodePacked(_selector, proof, instances));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }

    /// @notice Record the caller's next chunk proof for model `version` of `subnetId`.
    /// @param subnetId The subnet.
    /// @param version The model version the proof is about.
    /// @param commitmentId The caller's data commitment (its root ends the chain).
    /// @param proof The Groth16 proof, 256 bytes.
    /// @param instances The 5 public signals.
    function submitChunk(
        uint256 subnetId,
        uint64 version,
        uint256 commitmentId,
        bytes calldata proof,
        uint256[] calldata instances
    ) external {
        if (instances.length != NUM_SIGNALS) revert TrainingChunkInvalid();
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
        if (instances[2] != modelCommitment) {
            revert TrainingChunkWrongModel(modelCommitment, instances[2]);
        }
        Chain storage chain = _chains[subnetId][version][msg.sender];
        uint256 linkIn = instances[3];
        uint256 accIn = instances[4];
        if (linkIn == 0) {
            if (accIn != 0) revert TrainingChunkAccumulatorMismatch(0, accIn);
        } else {
            if (chain.chunks == 0 || chain.commitmentId != commitmentId || chain.link != linkIn) {
                revert TrainingChunkOutOfOrder(chain.commitmentId == commitmentId ? chain.link : 0, linkIn);
            }
            if (chain.acc != accIn) revert TrainingChunkAccumulatorMismatch(chain.acc, accIn);
            if (chain.chunks >= MAX_CHUNKS) revert TrainingChunkChainTooLong(chain.chunks);
        }
        if (!verifyProof(proof, instances)) revert TrainingChunkInvalid();
        if (linkIn == 0) {
            chain.commitmentId = commitmentId;
            chain.chunks = 0;
        }
        chain.link = instances[0];
        chain.acc = instances[1];
        emit TrainingChunkProven(subnetId, version, msg.sender, commitmentId, chain.chunks, proof, instances);
        chain.chunks += 1;
    }

    /// @notice Open the running sums of the caller's complete chain for model `version` of `subnetId`.
    /// @dev Records the opening only: the Poseidon recompute (`acc == Commit(salt, packed)`) is checked off
    /// chain by `twopm verify training` (about 7 Poseidon permutations of width 17 would cost far more gas).
    /// @param subnetId The subnet.
    /// @param version The model version.
    /// @param salt The last accumulator's salt.
    /// @param packed The packed totals, F + 1 field elements.
    function openTotals(uint256 subnetId, uint64 version, uint256 salt, uint256[] calldata packed) external {
        if (packed.length != numFeatures + 1) revert TrainingChunkBadOpening(numFeatures + 1, packed.length);
        Chain storage chain = _chains[subnetId][version][msg.sender];
        if (chain.chunks == 0) revert TrainingChunkChainIncomplete(subnetId, version, msg.sender);
        (, uint256 root,) = dataRegistry.commitmentOf(chain.commitmentId);
        if (chain.link != root) revert TrainingChunkChainIncomplete(subnetId, version, msg.sender);
        emit TrainingTotalsOpened(
            subnetId, version, msg.sender, chain.commitmentId, chain.chunks, chain.acc, salt, packed
        );
    }

    /// @notice A holder's chain for a model version, and whether it ends at its commitment's root.
    /// @param subnetId The subnet.
    /// @param version The model version.
    /// @param holder The data holder.
    /// @return chain The chain so far.
    /// @return complete Whether its last link equals the root of the commitment it names.
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
