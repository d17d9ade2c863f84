// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice The part of Lido's stETH that the vault uses (share-based, rebasing).
/// @dev Source: Lido `StETH.sol` (lidofinance/lido-dao, contracts/0.4.24/StETH.sol).
interface IStETH is IERC20 {
    /// @notice Amount of ether that `sharesAmount` shares are worth now, in wei.
    function getPooledEthByShares(uint256 sharesAmount) external view returns (uint256);
    /// @notice Number of shares that `ethAmount` wei of pooled ether correspond to now.
    function getSharesByPooledEth(uint256 ethAmount) external view returns (uint256);
    /// @notice Shares held by `account`.
    function sharesOf(address account) external view returns (uint256);
    /// @notice Moves `sharesAmount` shares from the caller to `recipient`; returns the stETH amount moved.
    function transferShares(address recipient, uint256 sharesAmount) external returns (uint256);
}

/// @notice The part of Lido's wstETH that the vault uses.
/// @dev Source: Lido `WstETH.sol` (contracts/0.6.12/WstETH.sol): `stEthPerToken()` is stETH per 1e18 wstETH.
interface IWstETH is IERC20 {
    /// @notice stETH (wei of ether) per 1e18 wstETH.
    function stEthPerToken() external view returns (uint256);
}

/// @notice The part of Rocket Pool's rETH that the vault uses.
/// @dev Source: Rocket Pool `RocketTokenRETH.sol`: `getExchangeRate()` is ETH wei per 1e18 rETH.
interface IRETH is IERC20 {
    /// @notice ETH wei per 1e18 rETH.
    function getExchangeRate() external view returns (uint256);
}
