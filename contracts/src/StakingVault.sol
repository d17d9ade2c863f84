// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IRETH, IStETH, IWstETH} from "./interfaces/ILiquidStaking.sol";

/// @title StakingVault
/// @notice Holds callers' liquid-staking tokens (stETH, wstETH, rETH) and values them in wei of ETH, so the
/// gateway can gate a subnet on a minimum stake.
/// @dev A position is kept in the token's share unit: Lido shares for stETH (so rebases raise the value
/// without any transaction), and the token amount for wstETH and rETH (whose own exchange rate grows).
/// {requestWithdrawal} removes the shares from the active stake at once; {withdraw} releases them after
/// the cooldown set by the owner.
contract StakingVault is Ownable2Step, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice How a listed token is valued.
    enum TokenKind {
        None,
        StETH,
        WstETH,
        RETH
    }

    /// @notice A listed token's configuration.
    struct TokenConfig {
        TokenKind kind;
        bool stakingEnabled;
    }

    /// @notice A pending or completed withdrawal.
    struct WithdrawalRequest {
        address account;
        address token;
        uint64 readyAt;
        bool withdrawn;
        uint256 shares;
    }

    /// @notice Longest cooldown the owner may set, in seconds.
    uint64 public constant MAX_COOLDOWN = 30 days;
    /// @notice Most tokens that can ever be listed; bounds the loop in {stakedValueOf}.
    uint256 public constant MAX_TOKENS = 8;

    address[] private _tokens;
    mapping(address token => TokenConfig) private _tokenConfigs;
    mapping(address account => mapping(address token => uint256 shares)) private _activeShares;
    mapping(uint256 requestId => WithdrawalRequest) private _requests;
    uint256 private _requestCount;
    uint64 private _cooldown;

    /// @notice Emitted when the owner lists `token` or changes whether new stakes are accepted.
    event TokenConfigured(address indexed token, TokenKind kind, bool stakingEnabled);
    /// @notice Emitted when the owner changes the withdrawal cooldown (seconds).
    event CooldownUpdated(uint64 previousCooldown, uint64 newCooldown);
    /// @notice Emitted when `account` stakes `amount` of `token`, credited as `shares`.
    event Staked(address indexed account, address indexed token, uint256 amount, uint256 shares);
    /// @notice Emitted when `account` takes `shares` of `token` out of its active stake.
    event WithdrawalRequested(
        uint256 indexed requestId, address indexed account, address indexed token, uint256 shares, uint64 readyAt
    );
    /// @notice Emitted when a request's tokens are sent back; `amount` is in token units.
    event Withdrawn(
        uint256 indexed requestId, address indexed account, address indexed token, uint256 shares, uint256 amount
    );

    /// @notice `token` is not listed, or not accepting new stakes.
    error StakingVaultTokenNotAllowed(address token);
    /// @notice `token` is the zero address or `kind` is None.
    error StakingVaultInvalidToken(address token, TokenKind kind);
    /// @notice `token` is listed with another kind already.
    error StakingVaultTokenKindMismatch(address token, TokenKind listed, TokenKind requested);
    /// @notice The list of tokens is full.
    error StakingVaultTooManyTokens(uint256 max);
    /// @notice An amount or share count of zero.
    error StakingVaultZeroAmount();
    /// @notice `account` has `staked` active shares of `token`, fewer than `requested`.
    error StakingVaultInsufficientStake(address account, address token, uint256 staked, uint256 requested);
    /// @notice No withdrawal request has this id.
    error StakingVaultUnknownRequest(uint256 requestId);
    /// @notice The request belongs to another account.
    error StakingVaultNotRequestOwner(uint256 requestId, address account);
    /// @notice The request was paid out already.
    error StakingVaultAlreadyWithdrawn(uint256 requestId);
    /// @notice The cooldown of the request ends at `readyAt`; it is `timestamp` now.
    error StakingVaultCooldownActive(uint256 requestId, uint64 readyAt, uint256 timestamp);
    /// @notice The cooldown is above {MAX_COOLDOWN}.
    error StakingVaultCooldownTooLong(uint64 cooldown, uint64 max);

    /// @param initialOwner Account that lists tokens and sets the cooldown.
    /// @param cooldownSeconds Seconds between {requestWithdrawal} and {withdraw}, at most {MAX_COOLDOWN}.
    constructor(address initialOwner, uint64 cooldownSeconds) Ownable(initialOwner) {
        _setCooldown(cooldownSeconds);
    }

    // ----------------------------------------------------------------- owner

    /// @notice Lists `token` as `kind`, or changes whether it accepts new stakes.
    /// @dev Stakes in a token that stops accepting new stakes keep counting and can be withdrawn.
    /// @param token The token contract.
    /// @param kind How it is valued; fixed once listed.
    /// @param stakingEnabled Whether {stake} accepts it.
    function configureToken(address token, TokenKind kind, bool stakingEnabled) external onlyOwner {
        if (token == address(0) || kind == TokenKind.None) revert StakingVaultInvalidToken(token, kind);
        TokenConfig storage config = _tokenConfigs[token];
        if (config.kind == TokenKind.None) {
            if (_tokens.length == MAX_TOKENS) revert StakingVaultTooManyTokens(MAX_TOKENS);
            _tokens.push(token);
            config.kind = kind;
        } else if (config.kind != kind) {
            revert StakingVaultTokenKindMismatch(token, config.kind, kind);
        }
        config.stakingEnabled = stakingEnabled;
        emit TokenConfigured(token, kind, stakingEnabled);
    }

    /// @notice Sets the withdrawal cooldown for requests made from now on.
    /// @param cooldownSeconds Seconds, at most {MAX_COOLDOWN}.
    function setCooldown(uint64 cooldownSeconds) external onlyOwner {
        _setCooldown(cooldownSeconds);
    }

    // ----------------------------------------------------------------- stakers

    /// @notice Stakes `amount` of `token` from the caller (needs an ERC-20 allowance).
    /// @dev The credited shares are measured as the vault's balance change, so the exact Lido share
    /// rounding (and any transfer fee) is what counts.
    /// @param token A listed token that accepts stakes.
    /// @param amount Token units (wei of stETH, wstETH or rETH).
    /// @return shares The shares credited: Lido shares for stETH, the received amount otherwise.
    function stake(address token, uint256 amount) external nonReentrant returns (uint256 shares) {
        TokenConfig memory config = _tokenConfigs[token];
        if (!config.stakingEnabled) revert StakingVaultTokenNotAllowed(token);
        if (amount == 0) revert StakingVaultZeroAmount();
        uint256 before = _sharesHeld(token, config.kind);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        shares = _sharesHeld(token, config.kind) - before;
        if (shares == 0) revert StakingVaultZeroAmount();
        _activeShares[msg.sender][token] += shares;
        emit Staked(msg.sender, token, amount, shares);
    }

    /// @notice Takes `shares` of `token` out of the caller's active stake now; they can be withdrawn after
    /// the cooldown and no longer count in {stakedValueOf}.
    /// @param token A listed token.
    /// @param shares Share units of the position (see {stakeOf}).
    /// @return requestId Id to pass to {withdraw}.
    function requestWithdrawal(address token, uint256 shares) external returns (uint256 requestId) {
        if (_tokenConfigs[token].kind == TokenKind.None) revert StakingVaultTokenNotAllowed(token);
        if (shares == 0) revert StakingVaultZeroAmount();
        uint256 staked = _activeShares[msg.sender][token];
        if (shares > staked) revert StakingVaultInsufficientStake(msg.sender, token, staked, shares);
        // unchecked: shares <= staked was checked just above.
        unchecked {
            _activeShares[msg.sender][token] = staked - shares;
        }
        requestId = ++_requestCount;
        uint64 readyAt = uint64(block.timestamp) + _cooldown;
        _requests[requestId] = WithdrawalRequest(msg.sender, token, readyAt, false, shares);
        emit WithdrawalRequested(requestId, msg.sender, token, shares, readyAt);
    }

    /// @notice Sends the tokens of a matured withdrawal request back to its owner.
    /// @param requestId A request of the caller's whose cooldown has passed.
    /// @return amount Token units sent (for stETH, the shares' current value in stETH).
    function withdraw(uint256 requestId) external nonReentrant returns (uint256 amount) {
        WithdrawalRequest storage request = _requests[requestId];
        if (request.account == address(0)) revert StakingVaultUnknownRequest(requestId);
        if (request.account != msg.sender) revert StakingVaultNotRequestOwner(requestId, msg.sender);
        if (request.withdrawn) revert StakingVaultAlreadyWithdrawn(requestId);
        if (block.timestamp < request.readyAt) {
            revert StakingVaultCooldownActive(requestId, request.readyAt, block.timestamp);
        }
        request.withdrawn = true;
        address token = request.token;
        uint256 shares = request.shares;
        if (_tokenConfigs[token].kind == TokenKind.StETH) {
            amount = IStETH(token).transferShares(msg.sender, shares);
        } else {
            amount = shares;
            IERC20(token).safeTransfer(msg.sender, shares);
        }
        emit Withdrawn(requestId, msg.sender, token, shares, amount);
    }

    // ----------------------------------------------------------------- views

    /// @notice Value of `account`'s active stake over all listed tokens, in wei of ETH, at each token's own
    /// rate now (`getPooledEthByShares`, `stEthPerToken`, `getExchangeRate`). Rounds down.
    function stakedValueOf(address account) external view returns (uint256 valueWei) {
        uint256 count = _tokens.length;
        for (uint256 i = 0; i < count; ++i) {
            address token = _tokens[i];
            uint256 shares = _activeShares[account][token];
            if (shares != 0) valueWei += _valueOf(token, _tokenConfigs[token].kind, shares);
        }
    }

    /// @notice `account`'s active position in `token`: its shares and their value in wei of ETH.
    function stakeOf(address account, address token) external view returns (uint256 shares, uint256 valueWei) {
        shares = _activeShares[account][token];
        TokenKind kind = _tokenConfigs[token].kind;
        valueWei = (shares == 0 || kind == TokenKind.None) ? 0 : _valueOf(token, kind, shares);
    }

    /// @notice The listed tokens, in listing order.
    function tokens() external view returns (address[] memory) {
        return _tokens;
    }

    /// @notice The configuration of `token` (kind None when not listed).
    function tokenConfig(address token) external view returns (TokenConfig memory) {
        return _tokenConfigs[token];
    }

    /// @notice A withdrawal request; reverts for an unknown id.
    function withdrawalRequest(uint256 requestId) external view returns (WithdrawalRequest memory) {
        WithdrawalRequest memory request = _requests[requestId];
        if (request.account == address(0)) revert StakingVaultUnknownRequest(requestId);
        return request;
    }

    /// @notice Number of withdrawal requests ever made (the id of the latest).
    function withdrawalRequestCount() external view returns (uint256) {
        return _requestCount;
    }

    /// @notice Current withdrawal cooldown, in seconds.
    function cooldown() external view returns (uint64) {
        return _cooldown;
    }

    // ----------------------------------------------------------------- internals

    function _setCooldown(uint64 cooldownSeconds) private {
        if (cooldownSeconds > MAX_COOLDOWN) revert StakingVaultCooldownTooLong(cooldownSeconds, MAX_COOLDOWN);
        uint64 previous = _cooldown;
        _cooldown = cooldownSeconds;
        emit CooldownUpdated(previous, cooldownSeconds);
    }

    function _sharesHeld(address token, TokenKind kind) private view returns (uint256) {
        if (kind == TokenKind.StETH) return IStETH(token).sharesOf(address(this));
        return IERC20(token).balanceOf(address(this));
    }

    function _valueOf(address token, TokenKind kind, uint256 shares) private view returns (uint256) {
        if (kind == TokenKind.StETH) return IStETH(token).getPooledEthByShares(shares);
        if (kind == TokenKind.WstETH) return Math.mulDiv(shares, IWstETH(token).stEthPerToken(), 1e18);
        return Math.mulDiv(shares, IRETH(token).getExchangeRate(), 1e18);
    }
}
