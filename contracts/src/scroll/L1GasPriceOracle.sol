// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title L1GasPriceOracle (local stand-in)
/// @notice Stand-in for Scroll's `L1GasPriceOracle` predeploy at 0x5300000000000000000000000000000000000002, put
/// there on a local anvil with `anvil_setCode` and its values with `anvil_setStorageAt`, so that code and
/// benchmarks read the L1 data fee as they would on Scroll. Computes only the fee model Scroll runs since the
/// Galileo upgrade.
/// @dev The storage layout is Scroll's (scroll-tech/scroll-contracts, src/L2/predeploys/L1GasPriceOracle.sol):
/// slot 0 owner, 1 l1BaseFee, 2 overhead, 3 scalar, 4 whitelist, 5 l1BlobBaseFee, 6 commitScalar, 7 blobScalar,
/// 8 isCurie, 9 penaltyThreshold (deprecated), 10 penaltyFactor, 11 isFeynman, 12 isGalileo. The stand-in has no
/// setters: like Scroll's sequencer at a fork, the local tooling writes the slots directly
/// (contracts/scroll.py). Never deployed on Scroll, where the real predeploy answers.
contract L1GasPriceOracle {
    /// @dev The scalars' fixed-point precision, 1e9, as Scroll's `PRECISION`.
    uint256 private constant _PRECISION = 1e9;

    address private _owner;
    /// @notice L1 base fee, wei per gas (slot 1).
    uint256 public l1BaseFee;
    /// @notice Pre-Curie overhead (slot 2); unused by the Galileo fee.
    uint256 public overhead;
    /// @notice Pre-Curie scalar (slot 3); unused by the Galileo fee.
    uint256 public scalar;
    address private _whitelist;
    /// @notice L1 blob base fee, wei per blob gas (slot 5).
    uint256 public l1BlobBaseFee;
    /// @notice Scalar of the execution (commit) part, 1e9 precision (slot 6).
    uint256 public commitScalar;
    /// @notice Scalar of the blob part, 1e9 precision (slot 7).
    uint256 public blobScalar;
    /// @notice Whether the Curie upgrade is active (slot 8).
    bool public isCurie;
    uint256 private _penaltyThreshold;
    /// @notice Compressed size, in bytes, at which the size penalty doubles the fee (slot 10).
    uint256 public penaltyFactor;
    /// @notice Whether the Feynman upgrade is active (slot 11).
    bool public isFeynman;
    uint248 private _gap;
    /// @notice Whether the Galileo upgrade is active (slot 12).
    bool public isGalileo;

    /// @notice The stand-in computes the Galileo fee only; slot 12 is not set.
    error L1GasPriceOracleNotGalileo();
    /// @notice The penalty factor (slot 10) is zero.
    error L1GasPriceOracleZeroPenaltyFactor();

    /// @notice L1 data fee, in wei, of a transaction whose zstd-compressed signed RLP encoding is `data`.
    /// @dev Galileo: `base = (commitScalar * l1BaseFee + blobScalar * l1BlobBaseFee) * size`, then
    /// `(base + base * size / penaltyFactor) / 1e9`, with `size = data.length` (the caller passes the compressed
    /// transaction, or the raw one when compression does not shrink it).
    /// @param data The compressed signed transaction.
    function getL1Fee(bytes calldata data) external view returns (uint256) {
        if (!isGalileo) revert L1GasPriceOracleNotGalileo();
        uint256 factor = penaltyFactor;
        if (factor == 0) revert L1GasPriceOracleZeroPenaltyFactor();
        uint256 size = data.length;
        uint256 base = (commitScalar * l1BaseFee + blobScalar * l1BlobBaseFee) * size;
        return (base + (base * size) / factor) / _PRECISION;
    }

    /// @notice L1 gas of a transaction: 0 since Curie (the data goes to blobs), as on Scroll.
    function getL1GasUsed(bytes calldata) external pure returns (uint256) {
        return 0;
    }
}
