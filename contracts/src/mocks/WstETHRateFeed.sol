// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";

/// @title WstETHRateFeed
/// @notice Stand-in for Chainlink's wstETH/stETH exchange-rate feed on Scroll (18 decimals, stETH per 1 wstETH),
/// whose answer and update time the owner sets. Deployed on local chains, and on Scroll Sepolia, which has no
/// such feed.
/// @dev Keeps only the latest round, as the vault reads only {latestRoundData}; {getRoundData} answers for that
/// round and reverts for any other, like a Chainlink aggregator without data for the round.
contract WstETHRateFeed is AggregatorV3Interface, Ownable {
    uint80 private _roundId;
    int256 private _answer;
    uint256 private _updatedAt;

    /// @notice Emitted when the owner posts `answer` as round `roundId`, updated at `updatedAt` (unix seconds).
    event AnswerUpdated(int256 indexed answer, uint256 indexed roundId, uint256 updatedAt);
    /// @notice Emitted when the owner moves the latest round's update time (to make it stale or fresh in tests).
    event UpdatedAtChanged(uint256 indexed roundId, uint256 previousUpdatedAt, uint256 newUpdatedAt);

    /// @notice No round `roundId` is kept.
    error WstETHRateFeedNoRound(uint80 roundId);

    /// @param initialOwner Account that posts answers.
    /// @param initialAnswer stETH wei per 1e18 wstETH, posted as round 1 now.
    constructor(address initialOwner, int256 initialAnswer) Ownable(initialOwner) {
        _post(initialAnswer);
    }

    /// @notice Posts `answer` (stETH wei per 1e18 wstETH; any value, so tests can post bad ones) as a new round
    /// updated now.
    function setAnswer(int256 answer) external onlyOwner {
        _post(answer);
    }

    /// @notice Sets the latest round's update time, unix seconds.
    function setUpdatedAt(uint256 updatedAt) external onlyOwner {
        emit UpdatedAtChanged(_roundId, _updatedAt, updatedAt);
        _updatedAt = updatedAt;
    }

    /// @inheritdoc AggregatorV3Interface
    function decimals() external pure returns (uint8) {
        return 18;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external pure returns (string memory) {
        return "wstETH / stETH Exchange Rate (stand-in)";
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 4;
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        if (roundId != _roundId) revert WstETHRateFeedNoRound(roundId);
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }

    function _post(int256 answer) private {
        uint80 roundId = ++_roundId;
        _answer = answer;
        _updatedAt = block.timestamp;
        emit AnswerUpdated(answer, roundId, block.timestamp);
    }
}
