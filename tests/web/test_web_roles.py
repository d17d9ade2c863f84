"""A wallet user's way out on the web page, in a real headless Chromium against a real local stack.

Withdraw stake after the vault's cooldown, withdraw credit after the ledger's delay, claim payouts:
each button refuses with the time left (on the chain's clock) when it is too early and with one
line when there is nothing to take, without asking the wallet; time passes with
``evm_increaseTime``. The deployment of tests/conftest.py has a 1 h cooldown and a 10 min delay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect
from roles_support import earn_revenue
from web_support import WalletBridge, WebStack, fund_steth

from clients.sdk import Wallet

ROLES = 4  # an anvil account no other web test uses
EXPECT_TIMEOUT_MS = 15_000
WHEN = r"\(at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)"


def sign_in(page: Page) -> None:
    page.click("#connect")
    expect(page.locator("#signin")).to_be_enabled()
    page.click("#signin")
    expect(page.locator("#screen-account")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)


def go(page: Page, screen: str) -> None:
    page.click(f"#tabs a[data-screen={screen}]")
    expect(page.locator(f"#screen-{screen}")).to_be_visible()


def revisit(page: Page, screen: str) -> None:
    """Leave and come back, so the screen reads the chain again."""
    go(page, "account")
    go(page, screen)


def done(page: Page, text: str) -> None:
    expect(page.locator("#notice")).to_contain_text(text, timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#error")).to_be_hidden()


def refused_without_asking(page: Page, wallet: WalletBridge, click: str, pattern: str) -> None:
    before = len(wallet.calls)
    page.click(click)
    expect(page.locator("#error")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#error")).to_have_text(re.compile(pattern))
    assert "eth_sendTransaction" not in [m for m, _ in wallet.calls[before:]]


def test_a_wallet_user_withdraws_stake_and_credit_after_the_wait_and_claims_payouts(
    stack: WebStack,
    open_page: Callable[..., tuple[Page, Any]],
    artifacts: Callable[[Page, str], Any],
) -> None:
    account = stack.account(ROLES)
    user = account.address
    vault = stack.deployment.contract("StakingVault")
    ledger = stack.deployment.contract("InferenceLedger")
    steth = stack.deployment.contract("MockStETH")
    fund_steth(stack, ROLES, 10**18)
    page, wallet = open_page(ROLES)
    sign_in(page)

    # Stake, request a withdrawal: the request is listed with its cooldown.
    go(page, "stake")
    expect(page.locator("#withdrawals-none")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    page.fill("#stake-amount", "1")
    page.click("#stake-button")
    done(page, "Stake 1 stETH: done")
    page.fill("#withdraw-amount", "0.5")
    page.click("#withdraw-button")
    done(page, "Request withdrawal of 0.5 stETH: done")
    request_id = vault.functions.withdrawalRequestCount().call()
    row = page.locator(f"#withdrawals-body tr[data-request='{request_id}']")
    expect(row.locator(".cooldown")).to_have_text(
        re.compile(rf"^ends in (1 h|59 min \d+ s) {WHEN}$"), timeout=EXPECT_TIMEOUT_MS
    )
    artifacts(page, "roles-01-withdrawal-pending")

    # Too early: the page says how long is left and does not ask the wallet.
    refused_without_asking(
        page,
        wallet,
        f"#withdraw-request-{request_id}",
        rf"^The cooldown of withdrawal request {request_id} ends in (1 h|59 min \d+ s) {WHEN}\.$",
    )
    stack.anvil.increase_time(3601)
    revisit(page, "stake")
    expect(row.locator(".cooldown")).to_have_text(
        "over: ready to withdraw", timeout=EXPECT_TIMEOUT_MS
    )
    before = steth.functions.balanceOf(user).call()
    page.click(f"#withdraw-request-{request_id}")
    done(page, f"Withdraw request {request_id}: done")
    assert abs(steth.functions.balanceOf(user).call() - before - 5 * 10**17) <= 2
    assert vault.functions.withdrawalRequest(request_id).call()[3] is True
    expect(page.locator("#withdrawals-none")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(row).to_have_count(0)

    # Credit: nothing pending, then a request that waits out the delay.
    go(page, "credit")
    expect(page.locator("#credit-pending")).to_have_text("none", timeout=EXPECT_TIMEOUT_MS)
    refused_without_asking(
        page,
        wallet,
        "#credit-withdraw-complete",
        rf"^Nothing to withdraw: {user} has no pending credit withdrawal; request one first\.$",
    )
    page.fill("#deposit-amount", "0.1")
    page.click("#deposit-button")
    done(page, "Deposit 0.1 ETH: done")
    page.fill("#credit-withdraw-amount", "0.04")
    page.click("#credit-withdraw-request")
    done(page, "Request withdrawal of 0.04 ETH of credit: done")
    expect(page.locator("#credit-pending")).to_have_text(
        re.compile(rf"^0.04 ETH; the delay ends in (10 min|9 min \d+ s) {WHEN}$")
    )
    refused_without_asking(
        page,
        wallet,
        "#credit-withdraw-complete",
        rf"^The credit withdrawal delay ends in (10 min|9 min \d+ s) {WHEN}\.$",
    )
    artifacts(page, "roles-02-credit-pending")
    stack.anvil.increase_time(601)
    revisit(page, "credit")
    expect(page.locator("#credit-pending")).to_have_text(
        "0.04 ETH; the delay is over: ready to withdraw", timeout=EXPECT_TIMEOUT_MS
    )
    page.click("#credit-withdraw-complete")
    done(page, "Withdraw 0.04 ETH of credit: done")
    assert ledger.functions.accountOf(user).call()[0] == 6 * 10**16
    expect(page.locator("#credit-pending")).to_have_text("none")

    # Payouts: nothing to claim, then revenue of a subnet this wallet owns, claimed once.
    expect(page.locator("#claimable")).to_have_text("0 ETH")
    refused_without_asking(
        page, wallet, "#claim", rf"^Nothing to claim: no payouts are credited to {user}\.$"
    )
    earned = earn_revenue(
        stack.anvil, stack.deployment, Wallet.from_key(account.private_key), 10**15
    )
    revisit(page, "credit")
    expect(page.locator("#claimable")).to_have_text(
        f"0.{earned:018d}".rstrip("0") + " ETH", timeout=EXPECT_TIMEOUT_MS
    )
    artifacts(page, "roles-03-claimable")
    page.click("#claim")
    done(page, "Claim 0.")
    assert ledger.functions.claimableOf(user).call() == 0
    expect(page.locator("#claimable")).to_have_text("0 ETH")
