"""Property tests: whatever users, the operator and contributors do, the ledger never creates or loses wei."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractRevert
from contracts.eip712 import sign_typed_data, spending_authorization

USERS = (7, 8, 9)
CONTRIBUTORS = (4, 5, 6)
OWNER, OPERATOR, FEES = 3, 1, 2

op = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(USERS), st.integers(1, 10**15)),
    st.tuples(
        st.just("batch"),
        st.lists(
            st.tuples(st.sampled_from(USERS), st.integers(0, 4 * 10**14)), min_size=1, max_size=4
        ),
        st.just(0),
    ),
    st.tuples(st.just("withdraw"), st.sampled_from(USERS), st.integers(1, 10**15)),
    st.tuples(st.just("settle"), st.just(0), st.just(0)),
    st.tuples(st.just("claim"), st.sampled_from((*CONTRIBUTORS, OWNER, FEES)), st.just(0)),
)


@pytest.fixture
def market(c, tx, addr, anvil):
    reg, ledger = c("SubnetRegistry"), c("InferenceLedger")
    tx(OWNER).transact(reg.functions.createSubnet("p", 1, 0, 1234))
    tx(OWNER).transact(
        reg.functions.publishModel(
            1,
            b"\x01" * 32,
            "u",
            b"\0" * 32,
            b"\0" * 32,
            [addr(i) for i in CONTRIBUTORS],
            [3333, 3333, 3334],
        )
    )
    tx(0).transact(ledger.functions.setWithdrawalDelay(0))
    expiry = anvil.w3.eth.get_block("latest")["timestamp"] + 10**6
    for u in USERS:
        data = spending_authorization(
            chain_id=anvil.chain_id,
            ledger=ledger.address,
            user=addr(u),
            max_total_spend_wei=10**15,
            expiry=expiry,
            nonce=1,
        )
        sig = sign_typed_data(anvil.accounts[u].private_key, data)
        tx(OPERATOR).transact(ledger.functions.authorizeSpending(addr(u), 10**15, expiry, 1, sig))
    return ledger


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, min_size=1, max_size=8))
def test_the_ledger_never_creates_or_loses_wei(ops, market, tx, addr, anvil):
    ledger = market
    snapshot = anvil.snapshot()
    try:
        deposits = withdrawn = debits = claimed = 0
        for kind, a, b in ops:
            try:
                if kind == "deposit":
                    tx(a).transact(ledger.functions.deposit(), value_wei=b)
                    deposits += b
                elif kind == "batch":
                    users, amounts = [addr(u) for u, _ in a], [x for _, x in a]
                    tx(OPERATOR).transact(
                        ledger.functions.recordBatch(1, b"\x05" * 32, users, amounts, len(users))
                    )
                    debits += sum(amounts)
                elif kind == "withdraw":
                    tx(a).transact(ledger.functions.requestCreditWithdrawal(b))
                    r = tx(a).transact(ledger.functions.withdrawCredit())
                    withdrawn += ledger.events.CreditWithdrawn().process_receipt(r)[0]["args"][
                        "amount"
                    ]
                elif kind == "settle":
                    tx(0).transact(ledger.functions.settle(1, 1))
                else:
                    r = tx(a).transact(ledger.functions.claim())
                    claimed += ledger.events.Claimed().process_receipt(r)[0]["args"]["amount"]
            except ContractRevert:
                pass  # a refused operation must change nothing; the invariants below check that too

            balances = sum(ledger.functions.accountOf(addr(u)).call()[0] for u in USERS)
            claimable = sum(
                ledger.functions.claimableOf(addr(i)).call() for i in (*CONTRIBUTORS, OWNER, FEES)
            )
            unsettled, settled = ledger.functions.revenueOf(1, 1).call()
            assert deposits - withdrawn == balances + debits
            assert debits == unsettled + settled
            assert settled == claimable + claimed
            assert anvil.w3.eth.get_balance(ledger.address) == balances + unsettled + claimable
            for u in USERS:
                assert ledger.functions.spentOf(addr(u)).call() <= 10**15
    finally:
        anvil.revert(snapshot)
