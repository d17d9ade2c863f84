// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IDelegationManager, IStrategy} from "../interfaces/IEigenLayer.sol";

/// @title MockStrategy
/// @notice Test stand-in for an EigenLayer strategy (stETH, rETH) with an owner-set share rate. Deployed only on
/// local chains that stand in for Ethereum L1.
contract MockStrategy is IStrategy, Ownable {
    uint256 private _underlyingPerShare = 1e18;

    /// @notice Emitted when the owner sets the underlying wei per 1e18 shares.
    event RateUpdated(uint256 previousRate, uint256 newRate);

    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Sets the underlying token wei per 1e18 shares.
    function setRate(uint256 underlyingPerShare) external onlyOwner {
        emit RateUpdated(_underlyingPerShare, underlyingPerShare);
        _underlyingPerShare = underlyingPerShare;
    }

    /// @inheritdoc IStrategy
    function sharesToUnderlyingView(uint256 amountShares) external view returns (uint256) {
        return Math.mulDiv(amountShares, _underlyingPerShare, 1e18);
    }
}

/// @title MockDelegationManager
/// @notice Test stand-in for EigenLayer's DelegationManager and AllocationManager as far as a restaker's value
/// goes: deposits (deposit shares), delegation to an operator, the operator's max magnitude (lowered by a
/// slashing, 1e18 = unslashed) and queued withdrawals (which remove the shares at once, as on EigenLayer).
/// Deposits skip the token transfer. Deployed only on local chains that stand in for Ethereum L1.
contract MockDelegationManager is IDelegationManager, Ownable {
    /// @notice Full magnitude, WAD (EigenLayer's `WAD`).
    uint64 public constant WAD = 1e18;

    mapping(address staker => address operator) private _delegatedTo;
    mapping(address staker => mapping(IStrategy strategy => uint256 shares)) private _depositShares;
    mapping(address operator => uint64 magnitude) private _slashedMagnitude;

    /// @notice Emitted when `staker`'s deposit shares in `strategy` change to `shares`.
    event DepositSharesSet(address indexed staker, IStrategy indexed strategy, uint256 shares);
    /// @notice Emitted when `staker` delegates to `operator`.
    event StakerDelegated(address indexed staker, address indexed operator);
    /// @notice Emitted when `staker` is undelegated from `operator`.
    event StakerUndelegated(address indexed staker, address indexed operator);
    /// @notice Emitted when `operator` is slashed to `maxMagnitude` (WAD).
    event OperatorSlashed(address indexed operator, uint64 maxMagnitude);
    /// @notice Emitted when `staker` queues `shares` of `strategy` for withdrawal.
    event WithdrawalQueued(address indexed staker, IStrategy indexed strategy, uint256 shares);

    /// @notice `staker` has `held` deposit shares of the strategy, fewer than `requested`.
    error MockDelegationManagerInsufficientShares(address staker, uint256 held, uint256 requested);
    /// @notice `staker` is already delegated.
    error MockDelegationManagerAlreadyDelegated(address staker, address operator);
    /// @notice A magnitude above WAD or not below the current one.
    error MockDelegationManagerInvalidMagnitude(uint64 current, uint64 requested);

    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Credits `shares` deposit shares of `strategy` to `staker` (a deposit, without the tokens).
    function depositFor(address staker, IStrategy strategy, uint256 shares) external onlyOwner {
        uint256 total = _depositShares[staker][strategy] + shares;
        _depositShares[staker][strategy] = total;
        emit DepositSharesSet(staker, strategy, total);
    }

    /// @notice Delegates the caller's restaked shares to `operator`.
    function delegateTo(address operator) external {
        address current = _delegatedTo[msg.sender];
        if (current != address(0)) revert MockDelegationManagerAlreadyDelegated(msg.sender, current);
        _delegatedTo[msg.sender] = operator;
        emit StakerDelegated(msg.sender, operator);
    }

    /// @notice Undelegates the caller (EigenLayer queues all its shares for withdrawal; here they stop counting).
    function undelegate() external {
        address operator = _delegatedTo[msg.sender];
        delete _delegatedTo[msg.sender];
        emit StakerUndelegated(msg.sender, operator);
    }

    /// @notice Queues `shares` of the caller's `strategy` shares for withdrawal: they leave its withdrawable
    /// shares at once.
    function queueWithdrawal(IStrategy strategy, uint256 shares) external {
        uint256 held = _depositShares[msg.sender][strategy];
        if (shares > held) revert MockDelegationManagerInsufficientShares(msg.sender, held, shares);
        _depositShares[msg.sender][strategy] = held - shares;
        emit WithdrawalQueued(msg.sender, strategy, shares);
    }

    /// @notice Slashes `operator` down to `maxMagnitude` (WAD fixed point) of its stake.
    function slashOperator(address operator, uint64 maxMagnitude) external onlyOwner {
        uint64 current = _maxMagnitude(operator);
        if (maxMagnitude >= current) revert MockDelegationManagerInvalidMagnitude(current, maxMagnitude);
        _slashedMagnitude[operator] = maxMagnitude == 0 ? 1 : maxMagnitude; // 0 would read as unslashed
        emit OperatorSlashed(operator, maxMagnitude);
    }

    /// @inheritdoc IDelegationManager
    function delegatedTo(address staker) external view returns (address) {
        return _delegatedTo[staker];
    }

    /// @inheritdoc IDelegationManager
    function getWithdrawableShares(address staker, IStrategy[] memory strategies)
        external
        view
        returns (uint256[] memory withdrawableShares, uint256[] memory depositShares)
    {
        uint256 count = strategies.length;
        withdrawableShares = new uint256[](count);
        depositShares = new uint256[](count);
        address operator = _delegatedTo[staker];
        uint64 magnitude = operator == address(0) ? WAD : _maxMagnitude(operator);
        for (uint256 i = 0; i < count; ++i) {
            uint256 shares = _depositShares[staker][strategies[i]];
            depositShares[i] = shares;
            withdrawableShares[i] = Math.mulDiv(shares, magnitude, WAD);
        }
    }

    function _maxMagnitude(address operator) private view returns (uint64) {
        uint64 slashed = _slashedMagnitude[operator];
        return slashed == 0 ? WAD : slashed;
    }
}
