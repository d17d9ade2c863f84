// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The part of an EigenLayer strategy that values restaked shares.
/// @dev Same signature as Layr-Labs/eigenlayer-contracts `src/contracts/interfaces/IStrategy.sol` (v1.x).
interface IStrategy {
    /// @notice Underlying tokens (e.g. stETH wei) that `amountShares` strategy shares are worth now.
    function sharesToUnderlyingView(uint256 amountShares) external view returns (uint256);
}

/// @notice The part of EigenLayer's DelegationManager that says what a staker has restaked.
/// @dev Same signatures as Layr-Labs/eigenlayer-contracts `src/contracts/interfaces/IDelegationManager.sol`
/// (v1.x, slashing release): withdrawable shares are deposit shares scaled by the staker's deposit scaling
/// factor and the operator's max magnitude, so a slashing lowers them at once; queued withdrawals are removed.
interface IDelegationManager {
    /// @notice The operator `staker` is delegated to, or the zero address.
    function delegatedTo(address staker) external view returns (address);

    /// @notice Per strategy, the shares `staker` could withdraw now (after slashing) and its deposit shares.
    function getWithdrawableShares(address staker, IStrategy[] memory strategies)
        external
        view
        returns (uint256[] memory withdrawableShares, uint256[] memory depositShares);
}
