// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {SubnetRegistry} from "./SubnetRegistry.sol";

/// @title InferenceLedger
/// @notice Prepaid credit for 2PM inference, users' signed spending caps, batch records of paid requests,
/// and the revenue split into pull payments.
/// @dev Flow: a user deposits ETH and signs an EIP-712 `SpendingAuthorization`; the gateway serves requests
/// and the operator records them in batches as a Merkle root of receipts plus per-user debits; each debit is
/// bounded by the user's deposit and by their signed cap. Revenue accrues to the subnet's model version that
/// was current when the batch was recorded; {settle} splits it into a protocol fee, the subnet owner's share
/// and the contributors' shares; everyone {claim}s their own balance. Merkle leaves follow OpenZeppelin's
/// `StandardMerkleTree` (double keccak of the ABI-encoded receipt), see {receiptLeaf}.
contract InferenceLedger is Ownable2Step, ReentrancyGuard, EIP712 {
    using SafeCast for uint256;

    /// @notice EIP-712 type of the spending authorisation a user signs.
    bytes32 public constant SPENDING_AUTHORIZATION_TYPEHASH =
        keccak256("SpendingAuthorization(address user,uint256 maxTotalSpend,uint64 expiry,uint64 nonce)");
    /// @notice Basis points in one whole.
    uint16 public constant BPS = 10_000;
    /// @notice Highest protocol fee the owner may set, in basis points.
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 2_000;
    /// @notice Longest credit-withdrawal delay the owner may set, in seconds.
    uint64 public constant MAX_WITHDRAWAL_DELAY = 30 days;

    /// @notice One paid request, as the gateway issued it. Its leaf is {receiptLeaf}.
    struct Receipt {
        bytes32 receiptId;
        address user;
        uint256 subnetId;
        bytes32 modelHash;
        bytes32 requestHash;
        bytes32 responseHash;
        uint256 priceWei;
        uint64 timestamp;
    }

    /// @notice What {recordBatch} reads and writes for a user, packed in one storage slot: credit (wei),
    /// what may still be debited under the current authorisation (wei), and when it expires (Unix s).
    /// @dev 2^96 wei is about 79 billion ETH, so uint96 amounts cannot overflow in practice; caps above it
    /// are stored as 2^96 - 1.
    struct Account {
        uint96 balance;
        uint96 capRemaining;
        uint64 expiry;
    }

    /// @notice The terms of a user's current spending authorisation (read only when a new one arrives).
    struct Authorization {
        uint128 maxTotalSpend;
        uint64 expiry;
        uint64 nonce;
    }

    /// @notice A requested credit withdrawal.
    struct PendingWithdrawal {
        uint128 amount;
        uint64 readyAt;
    }

    /// @notice Revenue of one model version, in wei.
    /// @dev `settled` keeps the slot non-zero after the first settlement, so later accruals are cheap.
    struct Revenue {
        uint128 unsettled;
        uint128 settled;
    }

    /// @notice The registry whose subnets this ledger bills for.
    SubnetRegistry public immutable registry;

    // Packed in one slot: read (operator) and written (batch count) by every {recordBatch}.
    address private _operator;
    uint64 private _batchCount;

    address private _feeRecipient;
    uint16 private _protocolFeeBps;
    uint64 private _withdrawalDelay;

    mapping(address user => Account) private _accounts;
    mapping(address user => Authorization) private _authorizations;
    mapping(address user => PendingWithdrawal) private _withdrawals;
    mapping(uint256 batchId => bytes32 root) private _batchRoots;
    mapping(uint256 subnetId => mapping(uint64 version => Revenue)) private _revenue;
    mapping(address account => uint256) private _claimable;

    /// @notice Emitted when `user`'s credit grows by `amount` wei, paid by `payer`.
    event Deposited(address indexed user, address indexed payer, uint256 amount);
    /// @notice Emitted when `user` asks to withdraw `amount` wei of credit from `readyAt` on.
    event CreditWithdrawalRequested(address indexed user, uint256 amount, uint64 readyAt);
    /// @notice Emitted when `user` cancels a pending credit withdrawal.
    event CreditWithdrawalCancelled(address indexed user);
    /// @notice Emitted when `amount` wei of credit is paid back to `user`.
    event CreditWithdrawn(address indexed user, uint256 amount);
    /// @notice Emitted when a spending authorisation takes effect (the spent counter restarts at zero).
    event SpendingAuthorized(address indexed user, uint256 maxTotalSpend, uint64 expiry, uint64 nonce);
    /// @notice Emitted when `user` revokes their spending authorisation.
    event SpendingRevoked(address indexed user);
    /// @notice Emitted when the operator records a batch of paid requests.
    event BatchRecorded(
        uint256 indexed batchId,
        uint256 indexed subnetId,
        uint64 indexed version,
        bytes32 receiptsRoot,
        uint32 requestCount,
        uint256 totalWei
    );
    /// @notice Emitted when a model version's revenue is split.
    event RevenueSettled(
        uint256 indexed subnetId,
        uint64 indexed version,
        uint256 amountWei,
        uint256 protocolFeeWei,
        uint256 ownerWei,
        uint256 contributorsWei
    );
    /// @notice Emitted for each account credited by a settlement.
    event PayoutAccrued(address indexed account, uint256 indexed subnetId, uint64 indexed version, uint256 amountWei);
    /// @notice Emitted when `account` claims `amount` wei.
    event Claimed(address indexed account, uint256 amount);
    /// @notice Emitted when the owner changes the operator.
    event OperatorUpdated(address indexed previousOperator, address indexed newOperator);
    /// @notice Emitted when the owner changes the protocol fee.
    event ProtocolFeeUpdated(uint16 previousFeeBps, uint16 newFeeBps);
    /// @notice Emitted when the owner changes the fee recipient.
    event FeeRecipientUpdated(address indexed previousRecipient, address indexed newRecipient);
    /// @notice Emitted when the owner changes the credit-withdrawal delay.
    event WithdrawalDelayUpdated(uint64 previousDelay, uint64 newDelay);

    /// @notice `account` is not the operator.
    error InferenceLedgerNotOperator(address account);
    /// @notice A zero amount of wei.
    error InferenceLedgerZeroAmount();
    /// @notice The zero address where an account is needed.
    error InferenceLedgerZeroAddress();
    /// @notice `user` has `balance` wei of credit, less than `amount`.
    error InferenceLedgerInsufficientCredit(address user, uint256 balance, uint256 amount);
    /// @notice Debiting `amount` would take `user` past their signed cap, of which `capRemaining` is left.
    error InferenceLedgerCapExceeded(address user, uint256 capRemaining, uint256 amount);
    /// @notice `user`'s authorisation expired at `expiry` (or the new one is already expired).
    error InferenceLedgerAuthorizationExpired(address user, uint64 expiry);
    /// @notice The authorisation's nonce is not above the last one used.
    error InferenceLedgerStaleNonce(address user, uint64 nonce, uint64 currentNonce);
    /// @notice The signature is not `user`'s (EOA or EIP-1271 contract wallet).
    error InferenceLedgerInvalidSignature(address user);
    /// @notice `user` has no pending credit withdrawal.
    error InferenceLedgerNoPendingWithdrawal(address user);
    /// @notice The withdrawal is ready at `readyAt`; it is `timestamp` now.
    error InferenceLedgerWithdrawalNotReady(address user, uint64 readyAt, uint256 timestamp);
    /// @notice `users` and `amounts` differ in length, or are empty.
    error InferenceLedgerInvalidBatch(uint256 users, uint256 amounts, uint32 requestCount);
    /// @notice The receipts root is zero.
    error InferenceLedgerZeroRoot();
    /// @notice The subnet has no published model to bill for.
    error InferenceLedgerNoModel(uint256 subnetId);
    /// @notice The model version has no unsettled revenue.
    error InferenceLedgerNothingToSettle(uint256 subnetId, uint64 version);
    /// @notice `account` has nothing to claim.
    error InferenceLedgerNothingToClaim(address account);
    /// @notice The fee is above {MAX_PROTOCOL_FEE_BPS}.
    error InferenceLedgerFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    /// @notice The delay is above {MAX_WITHDRAWAL_DELAY}.
    error InferenceLedgerDelayTooLong(uint64 delay, uint64 maxDelay);
    /// @notice No batch has this id.
    error InferenceLedgerUnknownBatch(uint256 batchId);

    /// @param initialOwner Account that sets the operator, fee and delay.
    /// @param registry_ The SubnetRegistry whose subnets are billed.
    /// @param operator_ The only account that records batches (the isolated signer's key).
    /// @param feeRecipient_ Receives the protocol fee.
    /// @param protocolFeeBps_ Protocol fee in basis points, at most {MAX_PROTOCOL_FEE_BPS}.
    /// @param withdrawalDelay_ Seconds between asking to withdraw credit and withdrawing it.
    constructor(
        address initialOwner,
        SubnetRegistry registry_,
        address operator_,
        address feeRecipient_,
        uint16 protocolFeeBps_,
        uint64 withdrawalDelay_
    ) Ownable(initialOwner) EIP712("2PM InferenceLedger", "1") {
        registry = registry_;
        _setOperator(operator_);
        _setFeeRecipient(feeRecipient_);
        _setProtocolFee(protocolFeeBps_);
        _setWithdrawalDelay(withdrawalDelay_);
    }

    modifier onlyOperator() {
        if (msg.sender != _operator) revert InferenceLedgerNotOperator(msg.sender);
        _;
    }

    // ----------------------------------------------------------------- credit

    /// @notice Adds the ETH sent to the caller's credit.
    function deposit() external payable {
        _deposit(msg.sender);
    }

    /// @notice Adds the ETH sent to `user`'s credit.
    function depositFor(address user) external payable {
        if (user == address(0)) revert InferenceLedgerZeroAddress();
        _deposit(user);
    }

    /// @notice Asks to withdraw `amount` wei of unspent credit after the withdrawal delay. The credit stays
    /// debitable until then (so requests already served can still be recorded); replaces an earlier request.
    function requestCreditWithdrawal(uint256 amount) external {
        if (amount == 0) revert InferenceLedgerZeroAmount();
        uint256 balance = _accounts[msg.sender].balance;
        if (amount > balance) revert InferenceLedgerInsufficientCredit(msg.sender, balance, amount);
        uint64 readyAt = uint64(block.timestamp) + _withdrawalDelay;
        _withdrawals[msg.sender] = PendingWithdrawal(uint128(amount), readyAt);
        emit CreditWithdrawalRequested(msg.sender, amount, readyAt);
    }

    /// @notice Cancels the caller's pending credit withdrawal.
    function cancelCreditWithdrawal() external {
        if (_withdrawals[msg.sender].amount == 0) revert InferenceLedgerNoPendingWithdrawal(msg.sender);
        delete _withdrawals[msg.sender];
        emit CreditWithdrawalCancelled(msg.sender);
    }

    /// @notice Pays out a matured withdrawal: the requested amount, or the remaining credit if less.
    /// @return amount Wei sent to the caller.
    function withdrawCredit() external nonReentrant returns (uint256 amount) {
        PendingWithdrawal memory pending = _withdrawals[msg.sender];
        if (pending.amount == 0) revert InferenceLedgerNoPendingWithdrawal(msg.sender);
        if (block.timestamp < pending.readyAt) {
            revert InferenceLedgerWithdrawalNotReady(msg.sender, pending.readyAt, block.timestamp);
        }
        Account storage account = _accounts[msg.sender];
        uint96 balance = account.balance;
        uint96 paid = pending.amount < balance ? uint96(pending.amount) : balance;
        // unchecked: paid <= balance by construction.
        unchecked {
            account.balance = balance - paid;
        }
        delete _withdrawals[msg.sender];
        emit CreditWithdrawn(msg.sender, paid);
        Address.sendValue(payable(msg.sender), paid);
        return paid;
    }

    // ----------------------------------------------------------------- spending authorisations

    /// @notice Installs a spending authorisation signed by `user` (EIP-712, EOA or EIP-1271 wallet).
    /// Anyone may submit it, usually the operator. It replaces the previous one and restarts the spent
    /// counter: from now on at most `maxTotalSpend` wei may be debited until `expiry`.
    /// @param user The account that signed.
    /// @param maxTotalSpend Most wei that may be debited under this authorisation.
    /// @param expiry Unix time (s) after which no debit is allowed; must be in the future.
    /// @param nonce Must be above the nonce of the current authorisation (so old ones cannot be replayed).
    /// @param signature The signature over {spendingAuthorizationDigest}.
    function authorizeSpending(address user, uint256 maxTotalSpend, uint64 expiry, uint64 nonce, bytes calldata signature)
        external
    {
        uint64 currentNonce = _authorizations[user].nonce;
        if (nonce <= currentNonce) revert InferenceLedgerStaleNonce(user, nonce, currentNonce);
        if (expiry <= block.timestamp) revert InferenceLedgerAuthorizationExpired(user, expiry);
        bytes32 digest = spendingAuthorizationDigest(user, maxTotalSpend, expiry, nonce);
        if (!SignatureChecker.isValidSignatureNow(user, digest, signature)) {
            revert InferenceLedgerInvalidSignature(user);
        }
        uint96 cap = maxTotalSpend > type(uint96).max ? type(uint96).max : uint96(maxTotalSpend);
        _authorizations[user] = Authorization(cap, expiry, nonce);
        Account storage account = _accounts[user];
        account.capRemaining = cap;
        account.expiry = expiry;
        emit SpendingAuthorized(user, maxTotalSpend, expiry, nonce);
    }

    /// @notice Revokes the caller's spending authorisation: no further debit until a new one.
    function revokeSpending() external {
        _accounts[msg.sender].capRemaining = 0;
        emit SpendingRevoked(msg.sender);
    }

    // ----------------------------------------------------------------- batches

    /// @notice Records a batch of paid requests of one subnet and debits the users.
    /// @dev Reverts as a whole if any debit would exceed the user's credit or signed cap, or if the
    /// authorisation has expired. Revenue accrues to the subnet's current model version.
    /// @param subnetId The subnet that served the requests.
    /// @param receiptsRoot Merkle root (OpenZeppelin conventions) of the batch's receipt leaves.
    /// @param users Users debited; a user may appear more than once.
    /// @param amounts Wei debited from each user, same length as `users`.
    /// @param requestCount Number of billed requests (rows) in the batch.
    /// @return batchId The new batch's id (ids start at 1).
    function recordBatch(
        uint256 subnetId,
        bytes32 receiptsRoot,
        address[] calldata users,
        uint256[] calldata amounts,
        uint32 requestCount
    ) external onlyOperator returns (uint256 batchId) {
        uint256 count = users.length;
        if (count == 0 || count != amounts.length || requestCount == 0) {
            revert InferenceLedgerInvalidBatch(count, amounts.length, requestCount);
        }
        if (receiptsRoot == bytes32(0)) revert InferenceLedgerZeroRoot();
        uint64 version = registry.currentVersion(subnetId);
        if (version == 0) revert InferenceLedgerNoModel(subnetId);

        uint256 total;
        for (uint256 i = 0; i < count; ++i) {
            address user = users[i];
            uint256 amount = amounts[i];
            Account memory account = _accounts[user];
            if (block.timestamp > account.expiry) revert InferenceLedgerAuthorizationExpired(user, account.expiry);
            if (amount > account.balance) revert InferenceLedgerInsufficientCredit(user, account.balance, amount);
            if (amount > account.capRemaining) {
                revert InferenceLedgerCapExceeded(user, account.capRemaining, amount);
            }
            // unchecked: amount <= balance and amount <= capRemaining were checked just above, and
            // total <= sum of uint96 balances cannot overflow uint256.
            unchecked {
                _accounts[user] = Account(
                    account.balance - uint96(amount), account.capRemaining - uint96(amount), account.expiry
                );
                total += amount;
            }
        }

        batchId = ++_batchCount;
        _batchRoots[batchId] = receiptsRoot;
        _revenue[subnetId][version].unsettled += total.toUint128();
        emit BatchRecorded(batchId, subnetId, version, receiptsRoot, requestCount, total);
    }

    // ----------------------------------------------------------------- settlement and claims

    /// @notice Splits a model version's unsettled revenue into claimable balances: the protocol fee to the
    /// fee recipient, then the subnet owner's share of the rest, then the contributors' shares of what
    /// remains. Rounding dust goes to the owner, so no wei is created or lost. Anyone may call it.
    /// @param subnetId The subnet.
    /// @param version The model version whose revenue is settled.
    function settle(uint256 subnetId, uint64 version) external {
        Revenue storage revenue = _revenue[subnetId][version];
        uint256 amount = revenue.unsettled;
        if (amount == 0) revert InferenceLedgerNothingToSettle(subnetId, version);
        (address owner_, uint16 ownerShareBps, address[] memory contributors, uint16[] memory sharesBps) =
            registry.revenueSplit(subnetId, version);
        revenue.unsettled = 0;
        revenue.settled += uint128(amount);

        uint256 fee = (amount * _protocolFeeBps) / BPS;
        uint256 ownerAmount = ((amount - fee) * ownerShareBps) / BPS;
        uint256 pool = amount - fee - ownerAmount;
        uint256 distributed;
        for (uint256 i = 0; i < contributors.length; ++i) {
            uint256 payout = (pool * sharesBps[i]) / BPS;
            if (payout != 0) {
                distributed += payout;
                _credit(contributors[i], subnetId, version, payout);
            }
        }
        ownerAmount += pool - distributed;
        if (fee != 0) _credit(_feeRecipient, subnetId, version, fee);
        if (ownerAmount != 0) _credit(owner_, subnetId, version, ownerAmount);
        emit RevenueSettled(subnetId, version, amount, fee, ownerAmount, distributed);
    }

    /// @notice Sends the caller everything credited to them (pull payment).
    /// @return amount Wei sent.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        if (amount == 0) revert InferenceLedgerNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ----------------------------------------------------------------- owner

    /// @notice Sets the account that records batches.
    function setOperator(address newOperator) external onlyOwner {
        _setOperator(newOperator);
    }

    /// @notice Sets the protocol fee, in basis points (at most {MAX_PROTOCOL_FEE_BPS}).
    function setProtocolFee(uint16 feeBps) external onlyOwner {
        _setProtocolFee(feeBps);
    }

    /// @notice Sets who receives the protocol fee.
    function setFeeRecipient(address newRecipient) external onlyOwner {
        _setFeeRecipient(newRecipient);
    }

    /// @notice Sets the credit-withdrawal delay for requests made from now on, in seconds.
    function setWithdrawalDelay(uint64 delay) external onlyOwner {
        _setWithdrawalDelay(delay);
    }

    // ----------------------------------------------------------------- views

    /// @notice The EIP-712 digest a user signs to authorise spending (domain "2PM InferenceLedger", "1").
    function spendingAuthorizationDigest(address user, uint256 maxTotalSpend, uint64 expiry, uint64 nonce)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(SPENDING_AUTHORIZATION_TYPEHASH, user, maxTotalSpend, expiry, nonce))
        );
    }

    /// @notice The Merkle leaf of a receipt: `keccak256(bytes.concat(keccak256(abi.encode(fields...))))`, as
    /// OpenZeppelin's `StandardMerkleTree` builds leaves.
    function receiptLeaf(Receipt calldata receipt) public pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        receipt.receiptId,
                        receipt.user,
                        receipt.subnetId,
                        receipt.modelHash,
                        receipt.requestHash,
                        receipt.responseHash,
                        receipt.priceWei,
                        receipt.timestamp
                    )
                )
            )
        );
    }

    /// @notice Whether `receipt` is in batch `batchId`, given its Merkle `proof` (OpenZeppelin `MerkleProof`).
    function verifyReceipt(uint256 batchId, Receipt calldata receipt, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, batchRoot(batchId), receiptLeaf(receipt));
    }

    /// @notice The receipts root of a batch; reverts for an unknown id.
    function batchRoot(uint256 batchId) public view returns (bytes32 root) {
        root = _batchRoots[batchId];
        if (root == bytes32(0)) revert InferenceLedgerUnknownBatch(batchId);
    }

    /// @notice Number of batches recorded (the id of the latest).
    function batchCount() external view returns (uint64) {
        return _batchCount;
    }

    /// @notice `user`'s credit (wei), what may still be debited under their authorisation (wei), and its
    /// expiry (Unix s).
    function accountOf(address user) external view returns (Account memory) {
        return _accounts[user];
    }

    /// @notice Wei debited from `user` under their current authorisation.
    function spentOf(address user) external view returns (uint256) {
        return _authorizations[user].maxTotalSpend - _accounts[user].capRemaining;
    }

    /// @notice `user`'s current spending authorisation.
    function authorizationOf(address user) external view returns (Authorization memory) {
        return _authorizations[user];
    }

    /// @notice `user`'s pending credit withdrawal (zero amount when none).
    function pendingWithdrawalOf(address user) external view returns (PendingWithdrawal memory) {
        return _withdrawals[user];
    }

    /// @notice Wei `user` can still be charged: credit not promised to a pending withdrawal, and within the
    /// signed cap while it has not expired.
    function spendableOf(address user) external view returns (uint256) {
        Account memory account = _accounts[user];
        if (block.timestamp > account.expiry) return 0;
        uint256 pending = _withdrawals[user].amount;
        uint256 credit = account.balance > pending ? account.balance - pending : 0;
        return credit < account.capRemaining ? credit : account.capRemaining;
    }

    /// @notice Revenue of a model version: not yet settled, and settled so far (wei).
    function revenueOf(uint256 subnetId, uint64 version) external view returns (Revenue memory) {
        return _revenue[subnetId][version];
    }

    /// @notice Wei `account` can {claim}.
    function claimableOf(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @notice The account that records batches.
    function operator() external view returns (address) {
        return _operator;
    }

    /// @notice The protocol fee, in basis points.
    function protocolFeeBps() external view returns (uint16) {
        return _protocolFeeBps;
    }

    /// @notice Who receives the protocol fee.
    function feeRecipient() external view returns (address) {
        return _feeRecipient;
    }

    /// @notice The credit-withdrawal delay, in seconds.
    function withdrawalDelay() external view returns (uint64) {
        return _withdrawalDelay;
    }

    // ----------------------------------------------------------------- internals

    function _deposit(address user) private {
        if (msg.value == 0) revert InferenceLedgerZeroAmount();
        Account storage account = _accounts[user];
        account.balance = (uint256(account.balance) + msg.value).toUint96();
        emit Deposited(user, msg.sender, msg.value);
    }

    function _credit(address account, uint256 subnetId, uint64 version, uint256 amount) private {
        _claimable[account] += amount;
        emit PayoutAccrued(account, subnetId, version, amount);
    }

    function _setOperator(address newOperator) private {
        if (newOperator == address(0)) revert InferenceLedgerZeroAddress();
        address previous = _operator;
        _operator = newOperator;
        emit OperatorUpdated(previous, newOperator);
    }

    function _setProtocolFee(uint16 feeBps) private {
        if (feeBps > MAX_PROTOCOL_FEE_BPS) revert InferenceLedgerFeeTooHigh(feeBps, MAX_PROTOCOL_FEE_BPS);
        uint16 previous = _protocolFeeBps;
        _protocolFeeBps = feeBps;
        emit ProtocolFeeUpdated(previous, feeBps);
    }

    function _setFeeRecipient(address newRecipient) private {
        if (newRecipient == address(0)) revert InferenceLedgerZeroAddress();
        address previous = _feeRecipient;
        _feeRecipient = newRecipient;
        emit FeeRecipientUpdated(previous, newRecipient);
    }

    function _setWithdrawalDelay(uint64 delay) private {
        if (delay > MAX_WITHDRAWAL_DELAY) revert InferenceLedgerDelayTooLong(delay, MAX_WITHDRAWAL_DELAY);
        uint64 previous = _withdrawalDelay;
        _withdrawalDelay = delay;
        emit WithdrawalDelayUpdated(previous, delay);
    }
}
