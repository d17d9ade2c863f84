// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {NodeRegistry} from "./NodeRegistry.sol";

/// @title DataRegistry
/// @notice Data holders' commitments to their rows, written before training (as the seeds' DataHub did).
/// @dev A commitment is the Poseidon root of a holder's fixed-point rows and a secret salt (`zk/_training.py`,
/// `zk/circuits/training.circom`). Commitments are immutable records with increasing ids; a holder may make
/// several (one per data set or per training). A training proof names the commitment it was computed on, and
/// `TrainingProofVerifier` checks that the proof's data root is that commitment's and that it was made by the
/// prover before the model version was published.
contract DataRegistry {
    /// @notice Order of the BN254 scalar field: a root is a field element below it.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice One commitment.
    struct Commitment {
        address holder;
        uint64 committedAt;
        uint256 root;
    }

    /// @notice Registry whose nodes may commit.
    NodeRegistry public immutable nodeRegistry;

    Commitment[] private _commitments;
    mapping(address holder => uint256) private _latest;

    /// @notice Emitted when `holder` commits to `root` under id `commitmentId` (ids start at 1).
    event DataCommitted(uint256 indexed commitmentId, address indexed holder, uint256 root);

    /// @notice The caller is not a registered node.
    error DataRegistryNotRegistered(address holder);
    /// @notice The root is zero or not a field element.
    error DataRegistryInvalidRoot(uint256 root);
    /// @notice No commitment has this id.
    error DataRegistryUnknownCommitment(uint256 commitmentId);

    /// @param nodeRegistry_ The NodeRegistry whose nodes may commit.
    constructor(NodeRegistry nodeRegistry_) {
        nodeRegistry = nodeRegistry_;
    }

    /// @notice Records the caller's commitment to its rows.
    /// @param root Poseidon root of (salt, packed rows), a non-zero BN254 scalar field element.
    /// @return commitmentId The new commitment's id.
    function commitData(uint256 root) external returns (uint256 commitmentId) {
        if (!nodeRegistry.isRegistered(msg.sender)) revert DataRegistryNotRegistered(msg.sender);
        if (root == 0 || root >= FIELD_MODULUS) revert DataRegistryInvalidRoot(root);
        _commitments.push(Commitment(msg.sender, uint64(block.timestamp), root));
        commitmentId = _commitments.length;
        _latest[msg.sender] = commitmentId;
        emit DataCommitted(commitmentId, msg.sender, root);
    }

    /// @notice A commitment; reverts for an unknown id.
    /// @return holder Who committed.
    /// @return root The committed root.
    /// @return committedAt Block timestamp of the commitment.
    function commitmentOf(uint256 commitmentId)
        external
        view
        returns (address holder, uint256 root, uint64 committedAt)
    {
        if (commitmentId == 0 || commitmentId > _commitments.length) {
            revert DataRegistryUnknownCommitment(commitmentId);
        }
        Commitment storage c = _commitments[commitmentId - 1];
        return (c.holder, c.root, c.committedAt);
    }

    /// @notice The id of `holder`'s latest commitment (0 when none).
    function latestCommitmentOf(address holder) external view returns (uint256) {
        return _latest[holder];
    }

    /// @notice Number of commitments ever made (the latest id).
    function commitmentCount() external view returns (uint256) {
        return _commitments.length;
    }
}
