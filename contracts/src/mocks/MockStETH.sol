// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title MockStETH
/// @notice Local stand-in for Lido's stETH: balances are shares times the pooled-ether-per-share rate, so a
/// rebase changes every balance at once. Deployed only on local chains.
/// @dev Mirrors the share arithmetic of Lido `StETH.sol` (balance = shares * totalPooledEther / totalShares,
/// rounding down). {submit} mints shares for ETH like Lido; {rebase} sets the total pooled ether (owner only).
contract MockStETH is IERC20, Ownable {
    string public constant name = "Liquid staked Ether 2.0 (local)";
    string public constant symbol = "stETH";
    uint8 public constant decimals = 18;

    uint256 private _totalShares;
    uint256 private _totalPooledEther;
    mapping(address account => uint256) private _shares;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;

    /// @notice Emitted when shares move, beside the ERC-20 {Transfer} (as Lido does).
    event TransferShares(address indexed from, address indexed to, uint256 sharesValue);
    /// @notice Emitted when the owner changes the total pooled ether.
    event Rebased(uint256 previousTotalPooledEther, uint256 newTotalPooledEther);

    /// @notice Zero ETH sent, or zero shares would be minted.
    error MockStETHZeroAmount();
    /// @notice `account` holds `balance`, less than `needed` (shares or stETH, as the function says).
    error MockStETHInsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice `spender` may spend `allowance` of `owner`'s stETH, less than `needed`.
    error MockStETHInsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);

    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Mints stETH for the ETH sent, at the current rate (1:1 for the first deposit).
    /// @return shares Shares minted.
    function submit(address /* referral */ ) external payable returns (uint256 shares) {
        if (msg.value == 0) revert MockStETHZeroAmount();
        shares = _totalPooledEther == 0 ? msg.value : Math.mulDiv(msg.value, _totalShares, _totalPooledEther);
        if (shares == 0) revert MockStETHZeroAmount();
        _totalShares += shares;
        _totalPooledEther += msg.value;
        _shares[msg.sender] += shares;
        emit Transfer(address(0), msg.sender, getPooledEthByShares(shares));
        emit TransferShares(address(0), msg.sender, shares);
    }

    /// @notice Mints `amount` stETH to `to` at the current rate without ETH (local faucet; anyone may call).
    /// @return shares Shares minted (1:1 for the first mint).
    function mint(address to, uint256 amount) external returns (uint256 shares) {
        shares = _totalPooledEther == 0 ? amount : Math.mulDiv(amount, _totalShares, _totalPooledEther);
        if (shares == 0) revert MockStETHZeroAmount();
        _totalShares += shares;
        _totalPooledEther += amount;
        _shares[to] += shares;
        emit Transfer(address(0), to, getPooledEthByShares(shares));
        emit TransferShares(address(0), to, shares);
    }

    /// @notice Sets the total pooled ether, as a Lido oracle report would (a positive or negative rebase).
    function rebase(uint256 newTotalPooledEther) external onlyOwner {
        uint256 previous = _totalPooledEther;
        _totalPooledEther = newTotalPooledEther;
        emit Rebased(previous, newTotalPooledEther);
    }

    /// @inheritdoc IERC20
    function totalSupply() external view returns (uint256) {
        return _totalPooledEther;
    }

    /// @inheritdoc IERC20
    function balanceOf(address account) external view returns (uint256) {
        return getPooledEthByShares(_shares[account]);
    }

    /// @inheritdoc IERC20
    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @inheritdoc IERC20
    function approve(address spender, uint256 amount) external returns (bool) {
        _allowances[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @inheritdoc IERC20
    function transfer(address to, uint256 amount) external returns (bool) {
        _transferShares(msg.sender, to, getSharesByPooledEth(amount), amount);
        return true;
    }

    /// @inheritdoc IERC20
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = _allowances[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert MockStETHInsufficientAllowance(from, msg.sender, allowed, amount);
            _allowances[from][msg.sender] = allowed - amount;
        }
        _transferShares(from, to, getSharesByPooledEth(amount), amount);
        return true;
    }

    /// @notice Moves `sharesAmount` shares to `recipient`; returns their value in stETH.
    function transferShares(address recipient, uint256 sharesAmount) external returns (uint256 amount) {
        amount = getPooledEthByShares(sharesAmount);
        _transferShares(msg.sender, recipient, sharesAmount, amount);
    }

    /// @notice Shares held by `account`.
    function sharesOf(address account) external view returns (uint256) {
        return _shares[account];
    }

    /// @notice Total shares in existence.
    function getTotalShares() external view returns (uint256) {
        return _totalShares;
    }

    /// @notice Value of `sharesAmount` shares in wei of pooled ether, rounded down.
    function getPooledEthByShares(uint256 sharesAmount) public view returns (uint256) {
        if (_totalShares == 0) return 0;
        return Math.mulDiv(sharesAmount, _totalPooledEther, _totalShares);
    }

    /// @notice Shares that `ethAmount` wei of pooled ether correspond to, rounded down.
    function getSharesByPooledEth(uint256 ethAmount) public view returns (uint256) {
        if (_totalPooledEther == 0) return ethAmount;
        return Math.mulDiv(ethAmount, _totalShares, _totalPooledEther);
    }

    function _transferShares(address from, address to, uint256 sharesAmount, uint256 amount) private {
        uint256 held = _shares[from];
        if (held < sharesAmount) revert MockStETHInsufficientBalance(from, held, sharesAmount);
        // unchecked: held >= sharesAmount was checked just above.
        unchecked {
            _shares[from] = held - sharesAmount;
        }
        _shares[to] += sharesAmount;
        emit Transfer(from, to, amount);
        emit TransferShares(from, to, sharesAmount);
    }
}
