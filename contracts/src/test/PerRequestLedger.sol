// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PerRequestLedger
/// @notice Benchmark baseline only (bench/gas): records each paid request on its own, as the original 2PM
/// did, either one transaction per request or one event per request inside a batch transaction. Each
/// request debits the user's credit, so the work matches InferenceLedger.recordBatch except for batching.
contract PerRequestLedger {
    mapping(address user => uint256) public balanceOf;

    /// @notice Emitted for every recorded request.
    event RequestRecorded(bytes32 indexed leaf, address indexed user, uint256 amount);

    /// @notice `user` has too little credit.
    error PerRequestLedgerInsufficientCredit(address user);

    /// @notice Adds the ETH sent to `user`'s credit.
    function depositFor(address user) external payable {
        balanceOf[user] += msg.value;
    }

    /// @notice Records one request (one transaction per request).
    function recordRequest(bytes32 leaf, address user, uint256 amount) external {
        _debit(leaf, user, amount);
    }

    /// @notice Records many requests in one transaction, one event each.
    function recordRequests(bytes32[] calldata leaves, address[] calldata users, uint256[] calldata amounts)
        external
    {
        for (uint256 i = 0; i < leaves.length; ++i) {
            _debit(leaves[i], users[i], amounts[i]);
        }
    }

    function _debit(bytes32 leaf, address user, uint256 amount) private {
        uint256 balance = balanceOf[user];
        if (balance < amount) revert PerRequestLedgerInsufficientCredit(user);
        balanceOf[user] = balance - amount;
        emit RequestRecorded(leaf, user, amount);
    }
}
