// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockRateToken
/// @notice An ERC-20 with an exchange rate to ETH that the owner sets; the base of the local wstETH and
/// rETH stand-ins. Anyone may mint on a local chain (a faucet). Deployed only on local chains.
abstract contract MockRateToken is ERC20, Ownable {
    uint256 internal _rate;

    /// @notice Emitted when the owner changes the rate (ETH wei per 1e18 tokens).
    event RateUpdated(uint256 previousRate, uint256 newRate);

    /// @notice A rate of zero.
    error MockRateTokenZeroRate();

    constructor(string memory name_, string memory symbol_, address initialOwner, uint256 initialRate)
        ERC20(name_, symbol_)
        Ownable(initialOwner)
    {
        _setRate(initialRate);
    }

    /// @notice Mints `amount` tokens to `to` (local faucet).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Sets the exchange rate, ETH wei per 1e18 tokens.
    function setRate(uint256 newRate) external onlyOwner {
        _setRate(newRate);
    }

    function _setRate(uint256 newRate) private {
        if (newRate == 0) revert MockRateTokenZeroRate();
        uint256 previous = _rate;
        _rate = newRate;
        emit RateUpdated(previous, newRate);
    }
}

/// @title MockWstETH
/// @notice Local stand-in for Lido's wstETH with a settable `stEthPerToken`.
contract MockWstETH is MockRateToken {
    constructor(address initialOwner, uint256 initialRate)
        MockRateToken("Wrapped liquid staked Ether 2.0 (local)", "wstETH", initialOwner, initialRate)
    {}

    /// @notice stETH (wei of ether) per 1e18 wstETH.
    function stEthPerToken() external view returns (uint256) {
        return _rate;
    }
}

/// @title MockRETH
/// @notice Local stand-in for Rocket Pool's rETH with a settable `getExchangeRate`.
contract MockRETH is MockRateToken {
    constructor(address initialOwner, uint256 initialRate)
        MockRateToken("Rocket Pool ETH (local)", "rETH", initialOwner, initialRate)
    {}

    /// @notice ETH wei per 1e18 rETH.
    function getExchangeRate() external view returns (uint256) {
        return _rate;
    }
}
