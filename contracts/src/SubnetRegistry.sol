// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SubnetRegistry
/// @notice Subnets are published models that the 2PM gateway serves. Anyone may create one and becomes its
/// owner; the owner sets the price per request, the minimum stake a caller needs, its own share of revenue,
/// and publishes model versions with the contributors whose data trained them.
/// @dev Every change emits an event so a gateway can follow the registry from logs alone. Ownership moves
/// in two steps (propose, accept), as in OpenZeppelin's `Ownable2Step`.
contract SubnetRegistry {
    /// @notice Basis points in one whole.
    uint16 public constant BPS = 10_000;
    /// @notice Most contributors a model version may list; bounds the settlement loop.
    uint256 public constant MAX_CONTRIBUTORS = 64;
    /// @notice Longest subnet name, in bytes.
    uint256 public constant MAX_NAME_BYTES = 64;
    /// @notice Longest artifact URI, in bytes.
    uint256 public constant MAX_URI_BYTES = 512;

    /// @notice A subnet's settings.
    struct Subnet {
        address owner;
        uint16 ownerShareBps;
        uint64 currentVersion;
        uint64 createdAt;
        uint256 pricePerRequestWei;
        uint256 minStakeWei;
        string name;
    }

    /// @notice A published model version.
    struct ModelVersion {
        bytes32 modelHash;
        bytes32 featureSchemaHash;
        bytes32 trainingRunId;
        uint64 publishedAt;
        string artifactUri;
        address[] contributors;
        uint16[] sharesBps;
    }

    uint256 private _subnetCount;
    mapping(uint256 subnetId => Subnet) private _subnets;
    mapping(uint256 subnetId => address) private _pendingOwners;
    mapping(uint256 subnetId => mapping(uint64 version => ModelVersion)) private _models;
    mapping(uint256 subnetId => mapping(uint64 version => ModelVerifier)) private _verifiers;

    /// @notice How a model version's answers are proven: the contract that checks a proof of inference and
    /// the commitment to the version's parameters that proofs must carry (see `zk/` and docs/proofs.md).
    struct ModelVerifier {
        address verifier;
        uint256 modelCommitment;
    }

    /// @notice Emitted when `owner` creates subnet `subnetId`.
    event SubnetCreated(
        uint256 indexed subnetId,
        address indexed owner,
        string name,
        uint256 pricePerRequestWei,
        uint256 minStakeWei,
        uint16 ownerShareBps
    );
    /// @notice Emitted when the price per request changes.
    event SubnetPriceUpdated(uint256 indexed subnetId, uint256 previousPriceWei, uint256 newPriceWei);
    /// @notice Emitted when the minimum stake changes.
    event SubnetMinStakeUpdated(uint256 indexed subnetId, uint256 previousMinStakeWei, uint256 newMinStakeWei);
    /// @notice Emitted when the owner's share of revenue changes.
    event SubnetOwnerShareUpdated(uint256 indexed subnetId, uint16 previousShareBps, uint16 newShareBps);
    /// @notice Emitted when the owner proposes `newOwner`.
    event SubnetOwnershipTransferStarted(uint256 indexed subnetId, address indexed previousOwner, address indexed newOwner);
    /// @notice Emitted when `newOwner` accepts the subnet.
    event SubnetOwnershipTransferred(uint256 indexed subnetId, address indexed previousOwner, address indexed newOwner);
    /// @notice Emitted when a model version is published; it becomes the current one at once.
    event ModelPublished(
        uint256 indexed subnetId,
        uint64 indexed version,
        bytes32 modelHash,
        string artifactUri,
        bytes32 featureSchemaHash,
        bytes32 trainingRunId,
        address[] contributors,
        uint16[] sharesBps
    );

    /// @notice Emitted when the owner records the proof verifier of a model version (once per version).
    event ModelVerifierSet(uint256 indexed subnetId, uint64 indexed version, address verifier, uint256 modelCommitment);

    /// @notice No subnet has this id.
    error SubnetRegistryUnknownSubnet(uint256 subnetId);
    /// @notice `account` is not the owner of the subnet.
    error SubnetRegistryNotSubnetOwner(uint256 subnetId, address account);
    /// @notice `account` is not the proposed owner of the subnet.
    error SubnetRegistryNotPendingOwner(uint256 subnetId, address account);
    /// @notice The subnet has no such model version.
    error SubnetRegistryUnknownVersion(uint256 subnetId, uint64 version);
    /// @notice The name is empty or longer than {MAX_NAME_BYTES}.
    error SubnetRegistryInvalidName(uint256 length);
    /// @notice The artifact URI is empty or longer than {MAX_URI_BYTES}.
    error SubnetRegistryInvalidUri(uint256 length);
    /// @notice The model hash is zero.
    error SubnetRegistryZeroModelHash();
    /// @notice A share in basis points is above {BPS}.
    error SubnetRegistryInvalidOwnerShare(uint16 shareBps);
    /// @notice Contributors and shares differ in length.
    error SubnetRegistryLengthMismatch(uint256 contributors, uint256 shares);
    /// @notice No contributors, or more than {MAX_CONTRIBUTORS}.
    error SubnetRegistryInvalidContributorCount(uint256 count);
    /// @notice A contributor is the zero address or has a zero share.
    error SubnetRegistryInvalidContributor(uint256 index, address contributor, uint16 shareBps);
    /// @notice `contributor` appears twice.
    error SubnetRegistryDuplicateContributor(address contributor);
    /// @notice The shares sum to `sum` basis points instead of {BPS}.
    error SubnetRegistryInvalidShareSum(uint256 sum);
    /// @notice The version already has a verifier; it is fixed once recorded.
    error SubnetRegistryVerifierAlreadySet(uint256 subnetId, uint64 version);
    /// @notice The verifier address has no code or the commitment is zero.
    error SubnetRegistryInvalidVerifier(address verifier, uint256 modelCommitment);
    /// @notice The new owner is the zero address.
    error SubnetRegistryInvalidOwner(address newOwner);

    modifier onlySubnetOwner(uint256 subnetId) {
        address owner = _subnet(subnetId).owner;
        if (owner != msg.sender) revert SubnetRegistryNotSubnetOwner(subnetId, msg.sender);
        _;
    }

    // ----------------------------------------------------------------- subnets

    /// @notice Creates a subnet owned by the caller. It serves nothing until a model is published.
    /// @param name Display name, 1..64 bytes.
    /// @param pricePerRequestWei Price of one billed request (one row), in wei.
    /// @param minStakeWei Active stake (wei of ETH, see StakingVault) a caller needs.
    /// @param ownerShareBps Owner's share of revenue after the protocol fee, 0..10 000.
    /// @return subnetId The new subnet's id (ids start at 1).
    function createSubnet(string calldata name, uint256 pricePerRequestWei, uint256 minStakeWei, uint16 ownerShareBps)
        external
        returns (uint256 subnetId)
    {
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > MAX_NAME_BYTES) revert SubnetRegistryInvalidName(nameLength);
        if (ownerShareBps > BPS) revert SubnetRegistryInvalidOwnerShare(ownerShareBps);
        subnetId = ++_subnetCount;
        _subnets[subnetId] = Subnet({
            owner: msg.sender,
            ownerShareBps: ownerShareBps,
            currentVersion: 0,
            createdAt: uint64(block.timestamp),
            pricePerRequestWei: pricePerRequestWei,
            minStakeWei: minStakeWei,
            name: name
        });
        emit SubnetCreated(subnetId, msg.sender, name, pricePerRequestWei, minStakeWei, ownerShareBps);
    }

    /// @notice Sets the price of one billed request, in wei.
    function setPrice(uint256 subnetId, uint256 pricePerRequestWei) external onlySubnetOwner(subnetId) {
        Subnet storage subnet = _subnets[subnetId];
        uint256 previous = subnet.pricePerRequestWei;
        subnet.pricePerRequestWei = pricePerRequestWei;
        emit SubnetPriceUpdated(subnetId, previous, pricePerRequestWei);
    }

    /// @notice Sets the minimum active stake a caller needs, in wei of ETH.
    function setMinStake(uint256 subnetId, uint256 minStakeWei) external onlySubnetOwner(subnetId) {
        Subnet storage subnet = _subnets[subnetId];
        uint256 previous = subnet.minStakeWei;
        subnet.minStakeWei = minStakeWei;
        emit SubnetMinStakeUpdated(subnetId, previous, minStakeWei);
    }

    /// @notice Sets the owner's share of revenue after the protocol fee, in basis points (0..10 000).
    function setOwnerShare(uint256 subnetId, uint16 ownerShareBps) external onlySubnetOwner(subnetId) {
        if (ownerShareBps > BPS) revert SubnetRegistryInvalidOwnerShare(ownerShareBps);
        Subnet storage subnet = _subnets[subnetId];
        uint16 previous = subnet.ownerShareBps;
        subnet.ownerShareBps = ownerShareBps;
        emit SubnetOwnerShareUpdated(subnetId, previous, ownerShareBps);
    }

    /// @notice Proposes `newOwner`; the transfer completes when it calls {acceptSubnetOwnership}.
    /// Proposing the zero address is refused; a new proposal replaces the previous one.
    function transferSubnetOwnership(uint256 subnetId, address newOwner) external onlySubnetOwner(subnetId) {
        if (newOwner == address(0)) revert SubnetRegistryInvalidOwner(newOwner);
        _pendingOwners[subnetId] = newOwner;
        emit SubnetOwnershipTransferStarted(subnetId, msg.sender, newOwner);
    }

    /// @notice Completes a transfer proposed to the caller.
    function acceptSubnetOwnership(uint256 subnetId) external {
        Subnet storage subnet = _subnet(subnetId);
        if (_pendingOwners[subnetId] != msg.sender) revert SubnetRegistryNotPendingOwner(subnetId, msg.sender);
        address previous = subnet.owner;
        subnet.owner = msg.sender;
        delete _pendingOwners[subnetId];
        emit SubnetOwnershipTransferred(subnetId, previous, msg.sender);
    }

    // ----------------------------------------------------------------- models

    /// @notice Publishes a model version, which becomes the current one at once.
    /// @param subnetId A subnet of the caller's.
    /// @param modelHash sha256 of the model bundle the gateway will fetch (not zero).
    /// @param artifactUri Where the bundle lives (model-store path or HTTP URL), 1..512 bytes.
    /// @param featureSchemaHash sha256 of the canonical feature schema (names and order).
    /// @param trainingRunId Identifier of the federated training run that produced the model.
    /// @param contributors Data contributors (each node's operator address), 1..64, distinct, non-zero.
    /// @param sharesBps Each contributor's share of the contributors' revenue, non-zero, summing to 10 000.
    /// @return version The new version number (versions start at 1).
    function publishModel(
        uint256 subnetId,
        bytes32 modelHash,
        string calldata artifactUri,
        bytes32 featureSchemaHash,
        bytes32 trainingRunId,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) external onlySubnetOwner(subnetId) returns (uint64 version) {
        if (modelHash == bytes32(0)) revert SubnetRegistryZeroModelHash();
        uint256 uriLength = bytes(artifactUri).length;
        if (uriLength == 0 || uriLength > MAX_URI_BYTES) revert SubnetRegistryInvalidUri(uriLength);
        _checkContributors(contributors, sharesBps);
        Subnet storage subnet = _subnets[subnetId];
        version = subnet.currentVersion + 1;
        subnet.currentVersion = version;
        ModelVersion storage model = _models[subnetId][version];
        model.modelHash = modelHash;
        model.featureSchemaHash = featureSchemaHash;
        model.trainingRunId = trainingRunId;
        model.publishedAt = uint64(block.timestamp);
        model.artifactUri = artifactUri;
        model.contributors = contributors;
        model.sharesBps = sharesBps;
        emit ModelPublished(
            subnetId, version, modelHash, artifactUri, featureSchemaHash, trainingRunId, contributors, sharesBps
        );
    }

    /// @notice Records the contract that verifies proofs of inference for a published model version, and the
    /// commitment to that version's parameters. Fixed once set, so a served answer's proof cannot later be
    /// checked against another verifier.
    /// @param subnetId The subnet.
    /// @param version A published version of it.
    /// @param verifier Contract answering `verifyProof(bytes proof, uint256[] instances) returns (bool)`.
    /// @param modelCommitment The commitment proofs of this version carry (a Poseidon hash for `zk/` proofs).
    function setModelVerifier(uint256 subnetId, uint64 version, address verifier, uint256 modelCommitment)
        external
        onlySubnetOwner(subnetId)
    {
        if (_models[subnetId][version].modelHash == bytes32(0)) revert SubnetRegistryUnknownVersion(subnetId, version);
        if (verifier.code.length == 0 || modelCommitment == 0) {
            revert SubnetRegistryInvalidVerifier(verifier, modelCommitment);
        }
        ModelVerifier storage entry = _verifiers[subnetId][version];
        if (entry.verifier != address(0)) revert SubnetRegistryVerifierAlreadySet(subnetId, version);
        entry.verifier = verifier;
        entry.modelCommitment = modelCommitment;
        emit ModelVerifierSet(subnetId, version, verifier, modelCommitment);
    }

    // ----------------------------------------------------------------- views

    /// @notice The proof verifier and parameter commitment of a model version (zero values when none is set).
    function modelVerifierOf(uint256 subnetId, uint64 version)
        external
        view
        returns (address verifier, uint256 modelCommitment)
    {
        ModelVerifier storage entry = _verifiers[subnetId][version];
        return (entry.verifier, entry.modelCommitment);
    }

    /// @notice Number of subnets ever created (the id of the latest).
    function subnetCount() external view returns (uint256) {
        return _subnetCount;
    }

    /// @notice The settings of a subnet; reverts for an unknown id.
    function subnetOf(uint256 subnetId) external view returns (Subnet memory) {
        return _subnet(subnetId);
    }

    /// @notice The proposed new owner of a subnet, or zero.
    function pendingOwnerOf(uint256 subnetId) external view returns (address) {
        _subnet(subnetId);
        return _pendingOwners[subnetId];
    }

    /// @notice The current model version of a subnet (0 before the first publication).
    function currentVersion(uint256 subnetId) external view returns (uint64) {
        return _subnet(subnetId).currentVersion;
    }

    /// @notice A published model version; reverts when the subnet or version does not exist.
    function modelOf(uint256 subnetId, uint64 version) external view returns (ModelVersion memory) {
        Subnet storage subnet = _subnet(subnetId);
        if (version == 0 || version > subnet.currentVersion) revert SubnetRegistryUnknownVersion(subnetId, version);
        return _models[subnetId][version];
    }

    /// @notice Who shares the revenue earned by a model version: the subnet's current owner and share, and
    /// the version's contributors with their shares.
    function revenueSplit(uint256 subnetId, uint64 version)
        external
        view
        returns (address owner, uint16 ownerShareBps, address[] memory contributors, uint16[] memory sharesBps)
    {
        Subnet storage subnet = _subnet(subnetId);
        if (version == 0 || version > subnet.currentVersion) revert SubnetRegistryUnknownVersion(subnetId, version);
        ModelVersion storage model = _models[subnetId][version];
        return (subnet.owner, subnet.ownerShareBps, model.contributors, model.sharesBps);
    }

    // ----------------------------------------------------------------- internals

    function _subnet(uint256 subnetId) private view returns (Subnet storage subnet) {
        subnet = _subnets[subnetId];
        if (subnet.owner == address(0)) revert SubnetRegistryUnknownSubnet(subnetId);
    }

    function _checkContributors(address[] calldata contributors, uint16[] calldata sharesBps) private pure {
        uint256 count = contributors.length;
        if (count != sharesBps.length) revert SubnetRegistryLengthMismatch(count, sharesBps.length);
        if (count == 0 || count > MAX_CONTRIBUTORS) revert SubnetRegistryInvalidContributorCount(count);
        uint256 sum;
        for (uint256 i = 0; i < count; ++i) {
            address contributor = contributors[i];
            if (contributor == address(0) || sharesBps[i] == 0) {
                revert SubnetRegistryInvalidContributor(i, contributor, sharesBps[i]);
            }
            for (uint256 j = 0; j < i; ++j) {
                if (contributors[j] == contributor) revert SubnetRegistryDuplicateContributor(contributor);
            }
            sum += sharesBps[i];
        }
        if (sum != BPS) revert SubnetRegistryInvalidShareSum(sum);
    }
}
