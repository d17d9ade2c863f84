// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @title NodeRegistry
/// @notice Identities of 2PM nodes (data holders, gateways): an address with a name and a URL.
/// @dev Liveness stays off chain: there are no heartbeat transactions. A node registers once, may update
/// its name and URL, and may leave; leaving deletes its record so the address can register again later.
contract NodeRegistry {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Longest accepted name, in bytes.
    uint256 public constant MAX_NAME_BYTES = 64;
    /// @notice Longest accepted URL, in bytes.
    uint256 public constant MAX_URL_BYTES = 256;
    /// @notice Largest page returned by {nodes}.
    uint256 public constant MAX_PAGE_SIZE = 100;

    /// @notice A node's public record.
    struct Node {
        address account;
        string name;
        string url;
        uint64 registeredAt;
        uint64 updatedAt;
    }

    EnumerableSet.AddressSet private _accounts;
    mapping(address account => Node) private _nodes;

    /// @notice Emitted when `account` registers.
    event NodeRegistered(address indexed account, string name, string url);
    /// @notice Emitted when `account` changes its name or URL.
    event NodeUpdated(address indexed account, string name, string url);
    /// @notice Emitted when `account` leaves the registry.
    event NodeLeft(address indexed account);

    /// @notice `account` is registered already.
    error NodeRegistryAlreadyRegistered(address account);
    /// @notice `account` is not registered.
    error NodeRegistryNotRegistered(address account);
    /// @notice The name is empty or longer than {MAX_NAME_BYTES}.
    error NodeRegistryInvalidName(uint256 length);
    /// @notice The URL is empty or longer than {MAX_URL_BYTES}.
    error NodeRegistryInvalidUrl(uint256 length);
    /// @notice The requested page size is zero or above {MAX_PAGE_SIZE}.
    error NodeRegistryInvalidPageSize(uint256 limit);

    /// @notice Registers the caller as a node.
    /// @param name Human-readable node name, 1..64 bytes.
    /// @param url Where the node can be reached (for example its SuperNode or gateway URL), 1..256 bytes.
    function register(string calldata name, string calldata url) external {
        _checkFields(name, url);
        if (!_accounts.add(msg.sender)) revert NodeRegistryAlreadyRegistered(msg.sender);
        uint64 nowTs = uint64(block.timestamp);
        _nodes[msg.sender] = Node(msg.sender, name, url, nowTs, nowTs);
        emit NodeRegistered(msg.sender, name, url);
    }

    /// @notice Changes the caller's name and URL.
    /// @param name New name, 1..64 bytes.
    /// @param url New URL, 1..256 bytes.
    function update(string calldata name, string calldata url) external {
        _checkFields(name, url);
        if (!_accounts.contains(msg.sender)) revert NodeRegistryNotRegistered(msg.sender);
        Node storage node = _nodes[msg.sender];
        node.name = name;
        node.url = url;
        node.updatedAt = uint64(block.timestamp);
        emit NodeUpdated(msg.sender, name, url);
    }

    /// @notice Removes the caller from the registry.
    function leave() external {
        if (!_accounts.remove(msg.sender)) revert NodeRegistryNotRegistered(msg.sender);
        delete _nodes[msg.sender];
        emit NodeLeft(msg.sender);
    }

    /// @notice Whether `account` is a registered node.
    function isRegistered(address account) external view returns (bool) {
        return _accounts.contains(account);
    }

    /// @notice The record of `account`; reverts if it is not registered.
    function nodeOf(address account) external view returns (Node memory) {
        if (!_accounts.contains(account)) revert NodeRegistryNotRegistered(account);
        return _nodes[account];
    }

    /// @notice Number of registered nodes.
    function nodeCount() external view returns (uint256) {
        return _accounts.length();
    }

    /// @notice A page of registered nodes in registration order (order changes when a node leaves).
    /// @param offset Index of the first node to return.
    /// @param limit Page size, 1..{MAX_PAGE_SIZE}.
    /// @return page Up to `limit` nodes starting at `offset`; empty when `offset` is past the end.
    /// @return total Number of registered nodes.
    function nodes(uint256 offset, uint256 limit) external view returns (Node[] memory page, uint256 total) {
        if (limit == 0 || limit > MAX_PAGE_SIZE) revert NodeRegistryInvalidPageSize(limit);
        total = _accounts.length();
        if (offset >= total) return (new Node[](0), total);
        uint256 end = offset + limit > total ? total : offset + limit;
        page = new Node[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            page[i - offset] = _nodes[_accounts.at(i)];
        }
    }

    function _checkFields(string calldata name, string calldata url) private pure {
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > MAX_NAME_BYTES) revert NodeRegistryInvalidName(nameLength);
        uint256 urlLength = bytes(url).length;
        if (urlLength == 0 || urlLength > MAX_URL_BYTES) revert NodeRegistryInvalidUrl(urlLength);
    }
}
