from __future__ import annotations

import pytest
from contract_support import ETH, events
from eth_account.messages import encode_typed_data
from web3 import Web3

from contracts import MerkleTree, Receipt, verify_proof
from contracts.eip712 import sign_typed_data, spending_authorization
from contracts.tx import expect_revert

PRICE = 10**12
H = b"\x11" * 32


@pytest.fixture
def ledger(c):
    return c("InferenceLedger")


@pytest.fixture
def market(c, tx, addr):
    """Subnet 1 (owner: account 3, 20 % owner share) with model v1 by contributors 4, 5, 6 (50/30/20 %)."""
    reg = c("SubnetRegistry")
    tx(3).transact(reg.functions.createSubnet("spector", PRICE, 0, 2000))
    tx(3).transact(
        reg.functions.publishModel(
            1, H, "file:///m", H, H, [addr(4), addr(5), addr(6)], [5000, 3000, 2000]
        )
    )
    return 1


def now(anvil) -> int:
    return anvil.w3.eth.get_block("latest")["timestamp"]


def authorize(
    ledger,
    tx,
    anvil,
    who: int,
    cap: int,
    *,
    nonce: int = 1,
    ttl: int = 86400,
    signer_key=None,
    user=None,
):
    account = anvil.accounts[who]
    user = user or account.address
    expiry = now(anvil) + ttl
    data = spending_authorization(
        chain_id=anvil.chain_id,
        ledger=ledger.address,
        user=user,
        max_total_spend_wei=cap,
        expiry=expiry,
        nonce=nonce,
    )
    signature = sign_typed_data(signer_key or account.private_key, data)
    receipt = tx(1).transact(
        ledger.functions.authorizeSpending(user, cap, expiry, nonce, signature)
    )
    return receipt, expiry


def fund(ledger, tx, anvil, who: int, deposit: int, cap: int) -> None:
    tx(who).transact(ledger.functions.deposit(), value_wei=deposit)
    authorize(ledger, tx, anvil, who, cap)


def record(ledger, tx, users, amounts, *, subnet=1, root=b"\x01" * 32, count=None):
    return tx(1).transact(
        ledger.functions.recordBatch(subnet, root, users, amounts, count or len(users))
    )


# ----------------------------------------------------------------- credit


def test_deposit_and_deposit_for_add_credit_with_events(ledger, tx, addr):
    r = tx(7).transact(ledger.functions.deposit(), value_wei=ETH)
    assert events(ledger, r, "Deposited") == [{"user": addr(7), "payer": addr(7), "amount": ETH}]
    r = tx(8).transact(ledger.functions.depositFor(addr(7)), value_wei=2 * ETH)
    assert events(ledger, r, "Deposited") == [
        {"user": addr(7), "payer": addr(8), "amount": 2 * ETH}
    ]
    assert ledger.functions.accountOf(addr(7)).call() == (3 * ETH, 0, 0)


def test_deposits_reject_zero_value_and_the_zero_address(ledger, addr):
    assert expect_revert(ledger.functions.deposit(), addr(7)).name == "InferenceLedgerZeroAmount"
    err = expect_revert(ledger.functions.depositFor("0x" + "00" * 20), addr(7), value=1)
    assert err.name == "InferenceLedgerZeroAddress"


def test_credit_withdrawal_waits_for_the_delay_and_pays_once(ledger, tx, addr, anvil):
    tx(7).transact(ledger.functions.deposit(), value_wei=ETH)
    r = tx(7).transact(ledger.functions.requestCreditWithdrawal(ETH // 2))
    ready = anvil.w3.eth.get_block(r["blockNumber"])["timestamp"] + 600
    assert events(ledger, r, "CreditWithdrawalRequested") == [
        {"user": addr(7), "amount": ETH // 2, "readyAt": ready}
    ]
    assert ledger.functions.pendingWithdrawalOf(addr(7)).call() == (ETH // 2, ready)
    err = expect_revert(ledger.functions.withdrawCredit(), addr(7))
    assert err.name == "InferenceLedgerWithdrawalNotReady" and err.arguments[:2] == (addr(7), ready)
    anvil.increase_time(600)
    before = anvil.w3.eth.get_balance(addr(7))
    r = tx(7).transact(ledger.functions.withdrawCredit())
    assert events(ledger, r, "CreditWithdrawn") == [{"user": addr(7), "amount": ETH // 2}]
    fee = r["gasUsed"] * r["effectiveGasPrice"]
    assert anvil.w3.eth.get_balance(addr(7)) == before + ETH // 2 - fee
    assert ledger.functions.accountOf(addr(7)).call()[0] == ETH // 2
    err = expect_revert(ledger.functions.withdrawCredit(), addr(7))
    assert (err.name, err.arguments) == ("InferenceLedgerNoPendingWithdrawal", (addr(7),))


def test_credit_stays_debitable_during_the_delay_and_withdrawal_pays_only_what_is_left(
    ledger, tx, addr, anvil, market
):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    tx(7).transact(ledger.functions.requestCreditWithdrawal(ETH))
    assert ledger.functions.spendableOf(addr(7)).call() == 0
    record(ledger, tx, [addr(7)], [ETH // 4])
    anvil.increase_time(600)
    r = tx(7).transact(ledger.functions.withdrawCredit())
    assert events(ledger, r, "CreditWithdrawn")[0]["amount"] == 3 * ETH // 4
    assert ledger.functions.accountOf(addr(7)).call()[0] == 0


def test_request_credit_withdrawal_rejects_zero_and_more_than_the_credit(ledger, tx, addr):
    tx(7).transact(ledger.functions.deposit(), value_wei=100)
    assert (
        expect_revert(ledger.functions.requestCreditWithdrawal(0), addr(7)).name
        == "InferenceLedgerZeroAmount"
    )
    err = expect_revert(ledger.functions.requestCreditWithdrawal(101), addr(7))
    assert (err.name, err.arguments) == ("InferenceLedgerInsufficientCredit", (addr(7), 100, 101))


def test_cancel_credit_withdrawal_clears_the_request(ledger, tx, addr):
    err = expect_revert(ledger.functions.cancelCreditWithdrawal(), addr(7))
    assert err.name == "InferenceLedgerNoPendingWithdrawal"
    tx(7).transact(ledger.functions.deposit(), value_wei=100)
    tx(7).transact(ledger.functions.requestCreditWithdrawal(50))
    r = tx(7).transact(ledger.functions.cancelCreditWithdrawal())
    assert events(ledger, r, "CreditWithdrawalCancelled") == [{"user": addr(7)}]
    assert ledger.functions.pendingWithdrawalOf(addr(7)).call() == (0, 0)


# ----------------------------------------------------------------- spending authorisations


def test_the_contract_digest_equals_the_eip712_digest_wallets_sign(ledger, anvil, addr):
    data = spending_authorization(
        chain_id=anvil.chain_id,
        ledger=ledger.address,
        user=addr(7),
        max_total_spend_wei=5,
        expiry=9,
        nonce=3,
    )
    signable = encode_typed_data(full_message=data)
    expected = Web3.keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert ledger.functions.spendingAuthorizationDigest(addr(7), 5, 9, 3).call() == expected
    domain = ledger.functions.eip712Domain().call()
    assert tuple(domain[1:5]) == ("2PM InferenceLedger", "1", 534351, ledger.address)


def test_authorize_spending_installs_the_cap_and_restarts_the_spent_counter(
    ledger, tx, addr, anvil, market
):
    fund(ledger, tx, anvil, 7, ETH, 1000)
    record(ledger, tx, [addr(7)], [600])
    assert ledger.functions.accountOf(addr(7)).call()[:2] == (ETH - 600, 400)
    assert ledger.functions.spentOf(addr(7)).call() == 600
    r, expiry = authorize(ledger, tx, anvil, 7, 2000, nonce=2)
    assert events(ledger, r, "SpendingAuthorized") == [
        {"user": addr(7), "maxTotalSpend": 2000, "expiry": expiry, "nonce": 2}
    ]
    assert ledger.functions.authorizationOf(addr(7)).call() == (2000, expiry, 2)
    assert ledger.functions.accountOf(addr(7)).call() == (ETH - 600, 2000, expiry)
    assert ledger.functions.spentOf(addr(7)).call() == 0
    assert ledger.functions.spendableOf(addr(7)).call() == 2000


def test_authorize_spending_rejects_replayed_expired_and_forged_authorisations(
    ledger, tx, addr, anvil
):
    authorize(ledger, tx, anvil, 7, 1000, nonce=5)
    expiry = now(anvil) + 100
    data = spending_authorization(
        chain_id=anvil.chain_id,
        ledger=ledger.address,
        user=addr(7),
        max_total_spend_wei=10**30,
        expiry=expiry,
        nonce=5,
    )
    sig = sign_typed_data(anvil.accounts[7].private_key, data)
    err = expect_revert(
        ledger.functions.authorizeSpending(addr(7), 10**30, expiry, 5, sig), addr(1)
    )
    assert (err.name, err.arguments) == ("InferenceLedgerStaleNonce", (addr(7), 5, 5))

    past = now(anvil) - 1
    err = expect_revert(ledger.functions.authorizeSpending(addr(7), 1, past, 6, sig), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerAuthorizationExpired", (addr(7), past))

    forged = sign_typed_data(
        anvil.accounts[8].private_key, {**data, "message": {**data["message"], "nonce": 6}}
    )
    err = expect_revert(
        ledger.functions.authorizeSpending(addr(7), 10**30, expiry, 6, forged), addr(1)
    )
    assert (err.name, err.arguments) == ("InferenceLedgerInvalidSignature", (addr(7),))
    # a valid signature for other terms does not authorise these terms
    err = expect_revert(
        ledger.functions.authorizeSpending(addr(7), 10**30 + 1, expiry, 5 + 1, sig), addr(1)
    )
    assert err.name == "InferenceLedgerInvalidSignature"


def test_a_contract_wallet_authorises_through_eip1271(ledger, tx, addr, anvil, market):
    wallet = tx(0).deploy("TestERC1271Wallet", addr(7))
    tx(0).transact(ledger.functions.depositFor(wallet.address), value_wei=ETH)
    r, _ = authorize(ledger, tx, anvil, 7, 500, user=wallet.address)
    assert events(ledger, r, "SpendingAuthorized")[0]["user"] == wallet.address
    record(ledger, tx, [wallet.address], [500])
    assert ledger.functions.accountOf(wallet.address).call()[:2] == (ETH - 500, 0)
    assert ledger.functions.spentOf(wallet.address).call() == 500
    # the wallet refuses signatures by anybody but its owner
    expiry = now(anvil) + 100
    data = spending_authorization(
        chain_id=anvil.chain_id,
        ledger=ledger.address,
        user=wallet.address,
        max_total_spend_wei=1,
        expiry=expiry,
        nonce=2,
    )
    bad = sign_typed_data(anvil.accounts[8].private_key, data)
    err = expect_revert(
        ledger.functions.authorizeSpending(wallet.address, 1, expiry, 2, bad), addr(1)
    )
    assert err.name == "InferenceLedgerInvalidSignature"


def test_revoke_spending_stops_further_debits(ledger, tx, addr, anvil, market):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    r = tx(7).transact(ledger.functions.revokeSpending())
    assert events(ledger, r, "SpendingRevoked") == [{"user": addr(7)}]
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 1), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerCapExceeded", (addr(7), 0, 1))


# ----------------------------------------------------------------- batches


def test_record_batch_debits_users_and_accrues_revenue_to_the_current_version(
    ledger, tx, addr, anvil, market
):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    fund(ledger, tx, anvil, 8, ETH, ETH)
    r = record(
        ledger,
        tx,
        [addr(7), addr(8), addr(7)],
        [3 * PRICE, PRICE, 2 * PRICE],
        root=b"\x0a" * 32,
        count=6,
    )
    assert events(ledger, r, "BatchRecorded") == [
        {
            "batchId": 1,
            "subnetId": 1,
            "version": 1,
            "receiptsRoot": b"\x0a" * 32,
            "requestCount": 6,
            "totalWei": 6 * PRICE,
        }
    ]
    assert ledger.functions.accountOf(addr(7)).call()[:2] == (ETH - 5 * PRICE, ETH - 5 * PRICE)
    assert ledger.functions.accountOf(addr(8)).call()[:2] == (ETH - PRICE, ETH - PRICE)
    assert ledger.functions.spentOf(addr(7)).call() == 5 * PRICE
    assert ledger.functions.revenueOf(1, 1).call() == (6 * PRICE, 0)
    assert ledger.functions.batchRoot(1).call() == b"\x0a" * 32
    assert ledger.functions.batchCount().call() == 1


def test_record_batch_never_charges_above_the_deposit(ledger, tx, addr, anvil, market):
    fund(ledger, tx, anvil, 7, 100, ETH)
    err = expect_revert(
        ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7), addr(7)], [60, 41], 2), addr(1)
    )
    assert (err.name, err.arguments) == ("InferenceLedgerInsufficientCredit", (addr(7), 40, 41))


def test_record_batch_never_charges_above_the_signed_cap(ledger, tx, addr, anvil, market):
    fund(ledger, tx, anvil, 7, ETH, 100)
    record(ledger, tx, [addr(7)], [70])
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [31], 1), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerCapExceeded", (addr(7), 30, 31))


def test_record_batch_refuses_debits_after_the_authorisation_expired(
    ledger, tx, addr, anvil, market
):
    tx(7).transact(ledger.functions.deposit(), value_wei=ETH)
    _, expiry = authorize(ledger, tx, anvil, 7, ETH, ttl=60)
    anvil.increase_time(61)
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 1), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerAuthorizationExpired", (addr(7), expiry))
    assert ledger.functions.spendableOf(addr(7)).call() == 0


def test_record_batch_is_for_the_operator_only(ledger, addr, market):
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 1), addr(0))
    assert (err.name, err.arguments) == ("InferenceLedgerNotOperator", (addr(0),))


def test_record_batch_rejects_malformed_batches(ledger, tx, addr, c):
    err = expect_revert(
        ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1, 2], 1), addr(1)
    )
    assert (err.name, err.arguments) == ("InferenceLedgerInvalidBatch", (1, 2, 1))
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [], [], 1), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerInvalidBatch", (0, 0, 1))
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 0), addr(1))
    assert err.name == "InferenceLedgerInvalidBatch"
    err = expect_revert(ledger.functions.recordBatch(1, b"\x00" * 32, [addr(7)], [1], 1), addr(1))
    assert err.name == "InferenceLedgerZeroRoot"
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 1), addr(1))
    assert (err.name, err.arguments) == ("SubnetRegistryUnknownSubnet", (1,))
    tx(3).transact(c("SubnetRegistry").functions.createSubnet("no model yet", 1, 0, 0))
    err = expect_revert(ledger.functions.recordBatch(1, b"\x01" * 32, [addr(7)], [1], 1), addr(1))
    assert (err.name, err.arguments) == ("InferenceLedgerNoModel", (1,))
    err = expect_revert(ledger.functions.batchRoot(1), addr(0))
    assert (err.name, err.arguments) == ("InferenceLedgerUnknownBatch", (1,))


def test_a_receipt_proves_against_the_recorded_root_on_chain(ledger, tx, addr, anvil, market):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    receipts = [
        Receipt(
            bytes([i]) * 32,
            addr(7),
            1,
            H,
            bytes([i + 100]) * 32,
            bytes([i + 200]) * 32,
            PRICE,
            1_700_000_000 + i,
        )
        for i in range(1, 6)
    ]
    tree = MerkleTree([r.leaf() for r in receipts])
    record(ledger, tx, [addr(7)], [5 * PRICE], root=tree.root, count=5)
    for receipt in receipts:
        assert ledger.functions.receiptLeaf(receipt.as_tuple()).call() == receipt.leaf()
        proof = tree.proof(receipt.leaf())
        assert verify_proof(tree.root, receipt.leaf(), proof)
        assert ledger.functions.verifyReceipt(1, receipt.as_tuple(), proof).call()
    forged = Receipt(
        b"\x01" * 32, addr(7), 1, H, b"\x65" * 32, b"\xc9" * 32, PRICE - 1, 1_700_000_001
    )
    assert not ledger.functions.verifyReceipt(
        1, forged.as_tuple(), tree.proof(receipts[0].leaf())
    ).call()


# ----------------------------------------------------------------- settlement and claims


def test_settle_splits_fee_owner_and_contributors_and_leaves_no_dust(
    ledger, tx, addr, anvil, market
):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    revenue = 1_000_003  # not divisible: exercises rounding
    record(ledger, tx, [addr(7)], [revenue])
    r = tx(9).transact(ledger.functions.settle(1, 1))  # anyone may settle
    fee = revenue * 500 // 10_000
    owner = (revenue - fee) * 2000 // 10_000
    pool = revenue - fee - owner
    shares = [pool * s // 10_000 for s in (5000, 3000, 2000)]
    dust = pool - sum(shares)
    assert events(ledger, r, "RevenueSettled") == [
        {
            "subnetId": 1,
            "version": 1,
            "amountWei": revenue,
            "protocolFeeWei": fee,
            "ownerWei": owner + dust,
            "contributorsWei": sum(shares),
        }
    ]
    payouts = {e["account"]: e["amountWei"] for e in events(ledger, r, "PayoutAccrued")}
    assert payouts == {
        addr(4): shares[0],
        addr(5): shares[1],
        addr(6): shares[2],
        addr(2): fee,
        addr(3): owner + dust,
    }
    assert sum(payouts.values()) == revenue
    for account, amount in payouts.items():
        assert ledger.functions.claimableOf(account).call() == amount
    assert ledger.functions.revenueOf(1, 1).call() == (0, revenue)
    err = expect_revert(ledger.functions.settle(1, 1), addr(9))
    assert (err.name, err.arguments) == ("InferenceLedgerNothingToSettle", (1, 1))


def test_revenue_stays_with_the_version_that_earned_it(ledger, tx, addr, anvil, market, c):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    record(ledger, tx, [addr(7)], [1000])
    tx(3).transact(
        c("SubnetRegistry").functions.publishModel(1, b"\x99" * 32, "u", H, H, [addr(9)], [10_000])
    )
    record(ledger, tx, [addr(7)], [2000])
    assert ledger.functions.revenueOf(1, 1).call() == (1000, 0)
    assert ledger.functions.revenueOf(1, 2).call() == (2000, 0)
    tx(0).transact(ledger.functions.settle(1, 2))
    assert ledger.functions.claimableOf(addr(9)).call() > 0
    assert ledger.functions.claimableOf(addr(4)).call() == 0


def test_claim_pays_the_caller_once(ledger, tx, addr, anvil, market):
    fund(ledger, tx, anvil, 7, ETH, ETH)
    record(ledger, tx, [addr(7)], [10**15])
    tx(0).transact(ledger.functions.settle(1, 1))
    owed = ledger.functions.claimableOf(addr(4)).call()
    before = anvil.w3.eth.get_balance(addr(4))
    r = tx(4).transact(ledger.functions.claim())
    assert events(ledger, r, "Claimed") == [{"account": addr(4), "amount": owed}]
    assert (
        anvil.w3.eth.get_balance(addr(4)) == before + owed - r["gasUsed"] * r["effectiveGasPrice"]
    )
    err = expect_revert(ledger.functions.claim(), addr(4))
    assert (err.name, err.arguments) == ("InferenceLedgerNothingToClaim", (addr(4),))


def test_claim_and_withdraw_credit_are_reentrancy_safe(ledger, tx, addr, anvil, c):
    attacker = tx(0).deploy("ReentrantClaimer", ledger.address)
    reg = c("SubnetRegistry")
    tx(3).transact(reg.functions.createSubnet("s", 1, 0, 0))
    tx(3).transact(reg.functions.publishModel(1, H, "u", H, H, [attacker.address], [10_000]))
    fund(ledger, tx, anvil, 7, ETH, ETH)
    record(ledger, tx, [addr(7)], [10**6])
    tx(0).transact(ledger.functions.settle(1, 1))
    owed = ledger.functions.claimableOf(attacker.address).call()
    reentrancy_selector = Web3.keccak(text="ReentrancyGuardReentrantCall()")[:4]
    for mode in (1, 2):  # re-enter claim, then withdrawCredit, from inside claim
        snapshot = anvil.snapshot()
        tx(0).transact(attacker.functions.attackClaim(mode))
        assert attacker.functions.reentered().call() is False
        assert attacker.functions.reentryError().call() == reentrancy_selector
        assert anvil.w3.eth.get_balance(attacker.address) == owed
        assert ledger.functions.claimableOf(attacker.address).call() == 0
        anvil.revert(snapshot)

    tx(0).transact(attacker.functions.deposit(), value_wei=1000)
    tx(0).transact(attacker.functions.requestCreditWithdrawal(1000))
    anvil.increase_time(600)
    tx(0).transact(attacker.functions.attackWithdrawCredit(2))
    assert attacker.functions.reentered().call() is False
    assert attacker.functions.reentryError().call() == reentrancy_selector
    assert anvil.w3.eth.get_balance(attacker.address) == 1000
    assert ledger.functions.accountOf(attacker.address).call() == (0, 0, 0)


# ----------------------------------------------------------------- owner


def test_the_owner_sets_operator_fee_recipient_and_delay_with_events(ledger, tx, addr):
    assert ledger.functions.operator().call() == addr(1)
    r = tx(0).transact(ledger.functions.setOperator(addr(9)))
    assert events(ledger, r, "OperatorUpdated") == [
        {"previousOperator": addr(1), "newOperator": addr(9)}
    ]
    r = tx(0).transact(ledger.functions.setProtocolFee(2000))
    assert events(ledger, r, "ProtocolFeeUpdated") == [{"previousFeeBps": 500, "newFeeBps": 2000}]
    r = tx(0).transact(ledger.functions.setFeeRecipient(addr(8)))
    assert events(ledger, r, "FeeRecipientUpdated") == [
        {"previousRecipient": addr(2), "newRecipient": addr(8)}
    ]
    r = tx(0).transact(ledger.functions.setWithdrawalDelay(0))
    assert events(ledger, r, "WithdrawalDelayUpdated") == [{"previousDelay": 600, "newDelay": 0}]
    assert (
        ledger.functions.operator().call(),
        ledger.functions.protocolFeeBps().call(),
        ledger.functions.feeRecipient().call(),
        ledger.functions.withdrawalDelay().call(),
    ) == (addr(9), 2000, addr(8), 0)


def test_owner_settings_are_bounded_and_owner_only(ledger, addr):
    zero = "0x" + "00" * 20
    assert (
        expect_revert(ledger.functions.setOperator(zero), addr(0)).name
        == "InferenceLedgerZeroAddress"
    )
    assert (
        expect_revert(ledger.functions.setFeeRecipient(zero), addr(0)).name
        == "InferenceLedgerZeroAddress"
    )
    err = expect_revert(ledger.functions.setProtocolFee(2001), addr(0))
    assert (err.name, err.arguments) == ("InferenceLedgerFeeTooHigh", (2001, 2000))
    err = expect_revert(ledger.functions.setWithdrawalDelay(30 * 86400 + 1), addr(0))
    assert (err.name, err.arguments) == (
        "InferenceLedgerDelayTooLong",
        (30 * 86400 + 1, 30 * 86400),
    )
    for call in (
        ledger.functions.setOperator(addr(5)),
        ledger.functions.setProtocolFee(1),
        ledger.functions.setFeeRecipient(addr(5)),
        ledger.functions.setWithdrawalDelay(1),
    ):
        err = expect_revert(call, addr(5))
        assert (err.name, err.arguments) == ("OwnableUnauthorizedAccount", (addr(5),))


def test_the_ledger_points_at_the_registry_it_bills_for(ledger, c):
    assert ledger.functions.registry().call() == c("SubnetRegistry").address


def test_an_unlimited_cap_is_stored_as_the_largest_uint96(ledger, tx, addr, anvil):
    authorize(ledger, tx, anvil, 7, 2**256 - 1)
    assert ledger.functions.accountOf(addr(7)).call()[1] == 2**96 - 1
    assert ledger.functions.authorizationOf(addr(7)).call()[0] == 2**96 - 1
