// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLedger} from "../InferenceLedger.sol";

/// @title ReentrantClaimer
/// @notice Test-only attacker: when the ledger pays it, it calls back into `claim` or `withdrawCredit`.
/// Deployed only by the test suite, to show that both are reentrancy-safe.
contract ReentrantClaimer {
    /// @notice Which ledger function the attacker re-enters from `receive`.
    enum Mode {
        None,
        Claim,
        WithdrawCredit
    }

    InferenceLedger public immutable ledger;
    Mode public mode;
    /// @notice Whether the nested call succeeded (it must not).
    bool public reentered;
    /// @notice Revert data of the nested call.
    bytes public reentryError;

    constructor(InferenceLedger ledger_) {
        ledger = ledger_;
    }

    /// @notice Deposits the ETH sent as this contract's credit.
    function deposit() external payable {
        ledger.deposit{value: msg.value}();
    }

    /// @notice Asks for a credit withdrawal of `amount` wei.
    function requestCreditWithdrawal(uint256 amount) external {
        ledger.requestCreditWithdrawal(amount);
    }

    /// @notice Claims, re-entering in `mode` when paid.
    function attackClaim(Mode mode_) external {
        mode = mode_;
        ledger.claim();
    }

    /// @notice Withdraws credit, re-entering in `mode` when paid.
    function attackWithdrawCredit(Mode mode_) external {
        mode = mode_;
        ledger.withdrawCredit();
    }

    receive() external payable {
        Mode current = mode;
        mode = Mode.None;
        if (current == Mode.None) return;
        bytes memory call = current == Mode.Claim
            ? abi.encodeCall(InferenceLedger.claim, ())
            : abi.encodeCall(InferenceLedger.withdrawCredit, ());
        (bool ok, bytes memory data) = address(ledger).call(call);
        reentered = ok;
        reentryError = data;
    }
}
