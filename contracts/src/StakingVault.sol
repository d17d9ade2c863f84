// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {IRETH, IStETH, IWstETH} from "./interfaces/ILiquidStaking.sol";

/// @title StakingVault
/// @notice Holds callers' liquid-staking tokens (stETH, wstETH, rETH) and values them in wei of ETH, so the
/// gateway can gate a subnet on a minimum stake.
/// @dev A position is kept in the token's share unit: Lido shares for stETH (so rebases raise the value
/// without any transaction), and the token amount for wstETH and rETH (whose own exchange rate grows).
/// {requestWithdrawal} removes the shares from the active stake at once; {withdraw} releases them after
/// the cooldown set by the owner.
///
/// A wstETH or rETH token may instead be valued through a Chainlink-style rate feed ({configureRateFeed}): on
/// Scroll, bridged wstETH is a plain ERC-20 without `stEthPerToken`, and Lido's integration guide values it with
/// the wstETH/stETH exchange-rate feed. A rate that cannot be read -- a reverting call, a stale round, an answer
/// outside the configured bounds -- values that stake at 0, so {stakedValueOf} never reverts and never counts a
/// wrong value. stETH is counted 1:1 with ETH, as Lido's own `getPooledEthByShares` does.
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

    /// @notice A rate feed through which a token is valued instead of its own rate function.
    /// @dev `minAnswer` and `maxAnswer` are in the feed's own units (its `decimals()`), like Chainlink's bounds.
    struct RateFeed {
        address feed;
        uint64 maxAgeSeconds;
        int256 minAnswer;
        int256 maxAnswer;
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
    /// @notice Longest staleness allowance the owner may give a rate feed, in seconds.
    uint64 public constant MAX_FEED_AGE = 7 days;
    /// @notice Most decimals of a feed answer that the vault scales (more values the stake at 0).
    uint256 private constant _MAX_FEED_DECIMALS = 36;

    address[] private _tokens;
    mapping(address token => TokenConfig) private _tokenConfigs;
    mapping(address account => mapping(address token => uint256 shares)) private _activeShares;
    mapping(uint256 requestId => WithdrawalRequest) private _requests;
    uint256 private _requestCount;
    uint64 private _cooldown;
    mapping(address token => RateFeed) private _rateFeeds;

    /// @notice Emitted when the owner lists `token` or changes whether new stakes are accepted.
    event TokenConfigured(address indexed token, TokenKind kind, bool stakingEnabled);
    /// @notice Emitted when the owner sets (or, with `feed` zero, removes) the rate feed that values `token`.
    event RateFeedConfigured(
        address indexed token, address indexed feed, uint64 maxAgeSeconds, int256 minAnswer, int256 maxAnswer
    );
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
    /// @notice `token` (listed as `kind`) cannot be valued through a rate feed: stETH positions are Lido shares.
    error StakingVaultRateFeedNotSupported(address token, TokenKind kind);
    /// @notice `feed` has no code, the age is 0 or above {MAX_FEED_AGE}, or the bounds are not 0 < min <= max.
    error StakingVaultInvalidRateFeed(
        address token, address feed, uint64 maxAgeSeconds, int256 minAnswer, int256 maxAnswer
    );
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

    /// @notice Values `token` through `feed` from now on, or, with `feed` zero, through its own rate function again.
    /// @dev A round older than `maxAgeSeconds`, an answer outside [`minAnswer`, `maxAnswer`] or a failing call
    /// values the stake at 0. Choose `maxAgeSeconds` above the feed's heartbeat (about 24 h for wstETH/stETH on
    /// Scroll) and bounds that a real rate never leaves.
    /// @param token A listed wstETH or rETH token.
    /// @param feed An `AggregatorV3Interface` answering ETH (or stETH) per token, or zero to remove the feed.
    /// @param maxAgeSeconds Oldest `updatedAt` accepted, seconds before now; 1 to {MAX_FEED_AGE}.
    /// @param minAnswer Smallest answer accepted, in the feed's units; > 0.
    /// @param maxAnswer Largest answer accepted, in the feed's units; >= `minAnswer`.
    function configureRateFeed(address token, address feed, uint64 maxAgeSeconds, int256 minAnswer, int256 maxAnswer)
        external
        onlyOwner
    {
        TokenKind kind = _tokenConfigs[token].kind;
        if (kind == TokenKind.None) revert StakingVaultTokenNotAllowed(token);
        if (kind == TokenKind.StETH) revert StakingVaultRateFeedNotSupported(token, kind);
        if (feed == address(0)) {
            delete _rateFeeds[token];
            emit RateFeedConfigured(token, address(0), 0, 0, 0);
            return;
        }
        if (
            feed.code.length == 0 || maxAgeSeconds == 0 || maxAgeSeconds > MAX_FEED_AGE || minAnswer <= 0
                || minAnswer > maxAnswer
        ) revert StakingVaultInvalidRateFeed(token, feed, maxAgeSeconds, minAnswer, maxAnswer);
        _rateFeeds[token] = RateFeed(feed, maxAgeSeconds, minAnswer, maxAnswer);
        emit RateFeedConfigured(token, feed, maxAgeSeconds, minAnswer, maxAnswer);
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

    /// @notice Value of `account`'s active stake over all listed tokens, in wei of ETH, at each token's rate now:
    /// its rate feed's answer when one is configured, else its own rate (`getPooledEthByShares`,
    /// `stEthPerToken`, `getExchangeRate`). A token whose rate cannot be read, is stale or out of bounds counts
    /// 0; never reverts for it. Rounds down.
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

    /// @notice ETH wei per 1e18 units of `token` as the vault values it now (0 when unusable; see
    /// {stakedValueOf}). For stETH, the value of 1e18 Lido shares.
    function rateOf(address token) external view returns (uint256 weiPerToken) {
        TokenKind kind = _tokenConfigs[token].kind;
        weiPerToken = kind == TokenKind.None ? 0 : _valueOf(token, kind, 1e18);
    }

    /// @notice The rate feed that values `token` (feed zero when it is valued through its own rate).
    function rateFeed(address token) external view returns (RateFeed memory) {
        return _rateFeeds[token];
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
        if (kind == TokenKind.StETH) {
            return _readUint(token, abi.encodeCall(IStETH.getPooledEthByShares, (shares)));
        }
        RateFeed memory config = _rateFeeds[token];
        uint256 rate;
        if (config.feed != address(0)) {
            rate = _feedRate(config);
        } else if (kind == TokenKind.WstETH) {
            rate = _readUint(token, abi.encodeCall(IWstETH.stEthPerToken, ()));
        } else {
            rate = _readUint(token, abi.encodeCall(IRETH.getExchangeRate, ()));
        }
        return rate == 0 ? 0 : Math.mulDiv(shares, rate, 1e18);
    }

    /// @dev The feed's latest answer scaled to 18 decimals, or 0 when the call fails, the round is older than
    /// `maxAgeSeconds` (or dated in the future) or the answer lies outside the bounds. Reads the return data as
    /// plain words so that a malformed answer cannot make the view revert.
    function _feedRate(RateFeed memory config) private view returns (uint256) {
        (bool ok, bytes memory data) =
            config.feed.staticcall(abi.encodeCall(AggregatorV3Interface.latestRoundData, ()));
        if (!ok || data.length < 160) return 0;
        (, int256 answer,, uint256 updatedAt,) = abi.decode(data, (uint256, int256, uint256, uint256, uint256));
        if (updatedAt == 0 || updatedAt > block.timestamp || block.timestamp - updatedAt > config.maxAgeSeconds) {
            return 0;
        }
        if (answer < config.minAnswer || answer > config.maxAnswer) return 0;
        (bool decimalsOk, uint256 decimals) =
            _tryReadUint(config.feed, abi.encodeCall(AggregatorV3Interface.decimals, ()));
        if (!decimalsOk || decimals > _MAX_FEED_DECIMALS) return 0;
        // answer >= minAnswer > 0 was checked above, so the cast keeps its value.
        uint256 value = uint256(answer);
        if (decimals > 18) return value / 10 ** (decimals - 18);
        (bool fits, uint256 scaled) = Math.tryMul(value, 10 ** (18 - decimals));
        return fits ? scaled : 0;
    }

    /// @dev One uint256 returned by a static call, or 0 when it reverts or returns fewer than 32 bytes.
    function _readUint(address target, bytes memory callData) private view returns (uint256 value) {
        (, value) = _tryReadUint(target, callData);
    }

    /// @dev Whether a static call returned at least one word, and that word (0 otherwise).
    function _tryReadUint(address target, bytes memory callData) private view returns (bool ok, uint256 value) {
        bytes memory data;
        (ok, data) = target.staticcall(callData);
        ok = ok && data.length >= 32;
        if (ok) value = abi.decode(data, (uint256));
    }
}
