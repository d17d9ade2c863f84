// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Chainlink's price/rate feed interface, as the vault reads it.
/// @dev Same functions and return tuple as Chainlink `AggregatorV3Interface`
/// (smartcontractkit/chainlink, contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol). On Scroll, Lido's
/// wstETH/stETH exchange-rate feed answers stETH per 1 wstETH with 18 decimals.
interface AggregatorV3Interface {
    /// @notice Decimals of `answer`.
    function decimals() external view returns (uint8);

    /// @notice What the feed reports, e.g. "wstETH / stETH Exchange Rate".
    function description() external view returns (string memory);

    /// @notice Version of the aggregator behind the feed.
    function version() external view returns (uint256);

    /// @notice The round `roundId`.
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    /// @notice The latest round: its id, answer, start and update times (unix seconds) and the round answered in.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
