"""The web page in a real headless Chromium against a real local stack.

anvil + deployed contracts + the signer + the gateway (with the page) as processes on loopback;
the page's wallet is a test EIP-1193 provider backed by an anvil dev account (see
``eip1193_provider.js``). Screenshots of each main screen go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import siwe
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from playwright.sync_api import Page, expect
from web_support import PRICE_WEI, SHARED_ACCOUNT, WalletBridge, WebStack, fund_steth

TOUR, OTHER_CHAIN, SIGN_IN_REFUSED, NO_WALLET = 5, 6, 7, 8
EXPECT_TIMEOUT_MS = 15_000


def eth(wei: int) -> str:
    """The page's formatting of wei: decimal ETH without trailing zeros."""
    whole, frac = divmod(wei, 10**18)
    return f"{whole}" + (f".{frac:018d}".rstrip("0") if frac else "") + " ETH"


def sign_in(page: Page) -> None:
    page.click("#connect")
    expect(page.locator("#signin")).to_be_enabled()
    page.click("#signin")
    expect(page.locator("#screen-account")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)


def go(page: Page, screen: str) -> None:
    page.click(f"#tabs a[data-screen={screen}]")
    expect(page.locator(f"#screen-{screen}")).to_be_visible()


def wait_for_notice(page: Page, text: str) -> None:
    expect(page.locator("#notice")).to_contain_text(text, timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#error")).to_be_hidden()


def wait_for_error(page: Page, text: str) -> None:
    expect(page.locator("#error")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#error")).to_contain_text(text)


def import_module(page: Page, name: str) -> None:
    page.evaluate(f"async () => {{ window.{name} = await import('/app/{name}.js'); }}")


# ------------------------------------------------------------------------------ the tour


def test_a_wallet_user_signs_in_stakes_deposits_caps_manages_keys_and_proves_a_receipt(
    stack: WebStack,
    open_page: Callable[..., tuple[Page, Any]],
    artifacts: Callable[[Page, str], Any],
) -> None:
    user = stack.account(TOUR).address
    vault = stack.deployment.contract("StakingVault")
    ledger = stack.deployment.contract("InferenceLedger")
    steth = stack.deployment.contract("MockStETH")
    fund_steth(stack, TOUR, 3 * 10**18)
    page, wallet = open_page(TOUR)

    # Connect and sign in with Ethereum.
    expect(page.locator("#screen-welcome")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()
    artifacts(page, "01-sign-in")
    sign_in(page)
    expect(page.locator("#me-address")).to_have_text(user)
    expect(page.locator("#me-tier")).to_have_text("basic")
    expect(page.locator("#me-stake")).to_have_text("0 ETH")
    signed = [params for method, params in wallet.calls if method == "personal_sign"]
    assert len(signed) == 1
    message = siwe.SiweMessage.from_message(bytes.fromhex(signed[0][0][2:]).decode())
    assert message.address == user
    assert message.domain == stack.url.removeprefix("http://")
    assert message.chain_id == stack.anvil.chain_id
    assert str(message.uri) == stack.url + "/app/"
    artifacts(page, "02-account")

    # Stake 2 stETH: an approval, then the stake, both through the wallet.
    go(page, "stake")
    expect(page.locator("#token-balance")).to_contain_text(" stETH")
    page.fill("#stake-amount", "2")
    page.click("#stake-button")
    wait_for_notice(page, "Stake 2 stETH: done")
    sent = [params[0] for method, params in wallet.calls if method == "eth_sendTransaction"]
    assert [tx["to"] for tx in sent] == [steth.address, vault.address]
    staked_wei = vault.functions.stakedValueOf(user).call()
    assert staked_wei == 2 * 10**18
    expect(page.locator("#token-staked")).to_have_text("2 ETH of stETH")

    # Request withdrawal of 0.5: it stops counting at once.
    page.fill("#withdraw-amount", "0.5")
    page.click("#withdraw-button")
    wait_for_notice(page, "Request withdrawal of 0.5 stETH: done")
    assert vault.functions.stakedValueOf(user).call() == 15 * 10**17
    request = vault.functions.withdrawalRequest(vault.functions.withdrawalRequestCount().call())
    assert request.call()[0] == user
    artifacts(page, "03-stake")
    go(page, "account")
    expect(page.locator("#me-stake")).to_have_text("1.5 ETH", timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#me-tier")).to_have_text("silver")

    # Deposit credit, then sign a spending cap that the gateway submits on chain.
    go(page, "credit")
    page.fill("#deposit-amount", "0.1")
    page.click("#deposit-button")
    wait_for_notice(page, "Deposit 0.1 ETH: done")
    assert ledger.functions.accountOf(user).call()[0] == 10**17
    page.fill("#cap-amount", "0.05")
    page.fill("#cap-days", "30")
    page.click("#cap-button")
    wait_for_notice(page, "Spending cap of 0.05 ETH recorded")
    cap_wei, expiry, nonce = ledger.functions.authorizationOf(user).call()
    assert (cap_wei, nonce) == (5 * 10**16, 1)
    assert abs(expiry - (time.time() + 30 * 86_400)) < 120
    assert "eth_signTypedData_v4" in wallet.methods()
    artifacts(page, "04-credit")
    go(page, "account")
    expect(page.locator("#me-credit")).to_have_text("0.1 ETH", timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#me-cap")).to_have_text("0.05 ETH", timeout=EXPECT_TIMEOUT_MS)

    # Create an API key: its secret is shown once; an app uses it for a paid call.
    go(page, "keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    page.fill("#key-name", "tour app")
    page.click("#key-create")
    expect(page.locator("#new-key")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    secret = page.locator("#new-key-secret").inner_text()
    assert secret.startswith("twopm_")
    expect(page.locator("#keys-body tr")).to_have_count(1)
    expect(page.locator("#keys-body tr td").first).to_have_text("tour app")
    artifacts(page, "05-keys")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page.click("#new-key-copy")
    wait_for_notice(page, "Key copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.click("#new-key-done")
    expect(page.locator("#new-key")).to_be_hidden()
    assert secret not in page.content()

    bearer = {"Authorization": f"Bearer {secret}"}
    receipt_ids = []
    for _ in range(3):  # one batch of three receipts, so the proof is not empty
        paid = httpx.post(
            f"{stack.url}/v1/subnets/{stack.subnet_id}/noop", json={"rows": 1}, headers=bearer
        )
        assert paid.status_code == 200, paid.text
        receipt_ids.append(paid.headers["X-Receipt-Id"])
    receipt_id = receipt_ids[1]
    deadline = time.monotonic() + 30
    while True:
        status = httpx.get(f"{stack.url}/v1/receipts/{receipt_id}", headers=bearer).json()
        if status["status"] == "recorded" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["status"] == "recorded", status
    assert status["batch"]["size"] == 3 and len(status["proof"]) in (1, 2)  # depth of its leaf

    # Revoke the key: it stops working at once.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-body button[data-key-id]")
    expect(page.locator("#keys-body tr")).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#keys-empty")).to_be_visible()
    assert httpx.get(f"{stack.url}/v1/me", headers=bearer).status_code == 401

    # Look up the receipt and verify its Merkle proof on chain through the wallet.
    go(page, "receipts")
    page.fill("#receipt-id", receipt_id)
    page.click("#receipt-lookup")
    expect(page.locator("#receipt")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#receipt-fields")).to_contain_text("recorded")
    expect(page.locator("#receipt-fields")).to_contain_text(status["batch"]["root"])
    expect(page.locator("#receipt-proof li")).to_have_text(status["proof"])
    page.click("#receipt-verify")
    expect(page.locator("#receipt-verdict")).to_have_text(
        f"Verified on chain: the receipt is in batch #{status['batch']['batch_id']} of the "
        "InferenceLedger.",
        timeout=EXPECT_TIMEOUT_MS,
    )
    verify_calls = [
        p[0] for m, p in wallet.calls if m == "eth_call" and p[0]["data"].startswith("0x542e23fa")
    ]
    assert len(verify_calls) == 1 and verify_calls[0]["to"] == ledger.address
    artifacts(page, "06-receipt")

    # The account shows the usage recorded on chain.
    go(page, "account")
    page.click("#refresh")
    expect(page.locator("#me-spent")).to_have_text(eth(3 * PRICE_WEI), timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#me-cap-left")).to_have_text(eth(5 * 10**16 - 3 * PRICE_WEI))

    # Sign out: back to the welcome screen, and the session is gone.
    page.click("#signout")
    expect(page.locator("#screen-welcome")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator("#tabs")).to_be_hidden()
    expect(page.locator("#receipt-fields dd")).to_have_count(0)
    assert receipt_id not in page.content()
    gone = page.evaluate("fetch('/v1/me').then(r => r.status)")
    assert gone == 401


# ------------------------------------------------------------------------------ rejections


def new_calls(wallet: WalletBridge, since: int) -> list[str]:
    return [method for method, _ in wallet.calls[since:]]


def test_a_withdrawal_the_vault_refuses_shows_its_decoded_custom_error(
    signed_in: tuple[Page, WalletBridge], artifacts: Callable[[Page, str], Any]
) -> None:
    page, wallet = signed_in
    before = len(wallet.calls)
    go(page, "stake")
    page.fill("#withdraw-amount", "1")
    page.click("#withdraw-button")
    wait_for_error(
        page,
        "You have less active stake in this token than that. "
        "The contract refused: StakingVaultInsufficientStake",
    )
    expect(page.locator("#error")).to_contain_text(
        "staked 0, requested 1 (1000000000000000000 wei)"
    )
    assert "eth_call" in new_calls(wallet, before)
    assert "eth_sendTransaction" not in new_calls(wallet, before)
    artifacts(page, "07-error")


def test_a_transaction_refused_in_the_wallet_is_reported_and_nothing_is_mined(
    stack: WebStack, signed_in: tuple[Page, WalletBridge]
) -> None:
    page, wallet = signed_in
    go(page, "credit")
    page.evaluate("window.__twopmTestWallet.refuseNext('eth_sendTransaction')")
    before = len(wallet.calls)
    page.fill("#deposit-amount", "0.01")
    page.click("#deposit-button")
    wait_for_error(page, "You rejected the request in your wallet.")
    assert new_calls(wallet, before).count("eth_sendTransaction") == 1  # asked, and refused
    ledger = stack.deployment.contract("InferenceLedger")
    assert ledger.functions.accountOf(stack.account(SHARED_ACCOUNT).address).call()[0] == 0
    expect(page.locator("#deposit-button")).to_be_enabled()


def test_after_the_wallet_switches_account_transactions_are_refused_until_it_switches_back(
    stack: WebStack, signed_in: tuple[Page, WalletBridge]
) -> None:
    page, wallet = signed_in
    me = stack.account(SHARED_ACCOUNT).address
    other = stack.account(0).address
    go(page, "credit")
    before = len(wallet.calls)
    page.evaluate(
        "(a) => window.__twopmTestWallet.emit('accountsChanged', [a.toLowerCase()])", other
    )
    try:
        expect(page.locator("#wallet-status")).to_have_text(f"Signed in as {me}")
        page.fill("#deposit-amount", "0.01")
        page.click("#deposit-button")
        wait_for_error(page, f"Your wallet's account is not the signed-in {me}")
        assert "eth_sendTransaction" not in new_calls(wallet, before)
    finally:
        page.evaluate("(a) => window.__twopmTestWallet.emit('accountsChanged', [a])", me.lower())
    go(page, "account")
    expect(page.locator("#me-spent")).to_have_text("0 ETH", timeout=EXPECT_TIMEOUT_MS)


def test_a_reload_keeps_the_session(signed_in: tuple[Page, WalletBridge], stack: WebStack) -> None:
    page, _ = signed_in
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#screen-account")).to_be_visible()
    expect(page.locator("#me-address")).to_have_text(stack.account(SHARED_ACCOUNT).address)


def test_a_sign_in_refused_in_the_wallet_leaves_the_user_signed_out(
    open_page: Callable[..., tuple[Page, Any]],
) -> None:
    page, _ = open_page(SIGN_IN_REFUSED)
    page.click("#connect")
    expect(page.locator("#signin")).to_be_enabled()
    page.evaluate("window.__twopmTestWallet.refuseNext('personal_sign')")
    page.click("#signin")
    wait_for_error(page, "You rejected the request in your wallet.")
    expect(page.locator("#screen-welcome")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()


def test_receipt_lookups_explain_a_malformed_id_and_the_gateways_not_found_problem(
    signed_in: tuple[Page, WalletBridge],
) -> None:
    page, _ = signed_in
    go(page, "receipts")
    page.fill("#receipt-id", "0x1234")
    page.click("#receipt-lookup")
    wait_for_error(page, "A receipt id is 0x followed by 64 hex digits.")
    unknown = "0x" + "00" * 32
    page.fill("#receipt-id", unknown)
    page.click("#receipt-lookup")
    wait_for_error(page, f"no receipt {unknown} of yours")
    expect(page.locator("#receipt")).to_be_hidden()


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", '"" is not an amount'),
        ("abc", '"abc" is not an amount'),
        ("-1", '"-1" is not an amount'),
        ("1e18", '"1e18" is not an amount'),
        ("0", "enter more than zero"),
        ("0.0000000000000000001", "at most 18 decimals"),
    ],
)
def test_bad_amounts_are_refused_before_the_wallet_is_asked(
    signed_in: tuple[Page, WalletBridge], amount: str, message: str
) -> None:
    page, wallet = signed_in
    go(page, "credit")
    # the credit screen reads the pending withdrawal and the payouts when shown; let that finish
    expect(page.locator("#claim")).not_to_have_attribute("aria-busy", "true")
    before = len(wallet.calls)
    page.fill("#deposit-amount", amount)
    page.click("#deposit-button")
    wait_for_error(page, "Amount: " + message)
    assert new_calls(wallet, before) == []


def test_a_cap_valid_for_a_bad_number_of_days_is_refused_before_signing(
    signed_in: tuple[Page, WalletBridge],
) -> None:
    page, wallet = signed_in
    before = len(wallet.calls)
    go(page, "credit")
    for days in ("0", "1.5", "3651", "x"):
        page.fill("#cap-amount", "0.01")
        page.fill("#cap-days", days)
        page.click("#cap-button")
        wait_for_error(page, "Valid for: a whole number of days from 1 to 3650.")
    assert new_calls(wallet, before) == []


def test_a_wallet_on_another_chain_that_cannot_switch_is_told_which_chain_to_add(
    stack: WebStack, open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page, wallet = open_page(OTHER_CHAIN, chain_id=1, known_chain_ids=[1])
    page.click("#connect")
    wait_for_error(page, f"Your wallet does not know chain {stack.anvil.chain_id}; add it first.")
    assert "personal_sign" not in wallet.methods()


def test_a_wallet_on_another_chain_is_switched_to_the_gateways_chain_before_signing(
    stack: WebStack, open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page, wallet = open_page(OTHER_CHAIN, chain_id=1)
    sign_in(page)
    switches = [p for m, p in wallet.calls if m == "wallet_switchEthereumChain"]
    assert switches == [[{"chainId": hex(stack.anvil.chain_id)}]]
    assert wallet.methods().index("wallet_switchEthereumChain") < wallet.methods().index(
        "personal_sign"
    )


def test_without_a_wallet_the_page_says_one_is_needed(
    stack: WebStack, open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page, _ = open_page(NO_WALLET, wallet=False)
    expect(page.locator("#no-wallet")).to_be_visible()
    expect(page.locator("#connect")).to_be_disabled()
    expect(page.locator("#error")).to_be_hidden()


# ------------------------------------------------------------------------------ the page's JS


@pytest.fixture
def js(signed_in: tuple[Page, WalletBridge]) -> Page:
    """The page with its modules imported as window.abi, window.keccak, window.siwe."""
    page, _ = signed_in
    for name in ("abi", "keccak", "siwe"):
        import_module(page, name)
    return page


def test_the_page_keccak_and_checksums_match_eth_utils(js: Page) -> None:
    for length in (0, 1, 31, 135, 136, 137, 272, 300):
        data = bytes((i * 7 + length) % 256 for i in range(length))
        got = js.evaluate(
            "(hex) => keccak.toHex(keccak.keccak256(new Uint8Array((hex.match(/../g) || [])"
            ".map((b) => parseInt(b, 16)))))",
            data.hex(),
        )
        assert got == keccak(data).hex(), length
    for seed in range(8):
        address = "0x" + keccak(bytes([seed])).hex()[:40]
        assert js.evaluate("(a) => keccak.toChecksumAddress(a)", address) == to_checksum_address(
            address
        )
    with pytest.raises(Exception, match="not an address"):
        js.evaluate("() => keccak.toChecksumAddress('0x1234')")


def test_the_page_calldata_matches_eth_abi(js: Page, stack: WebStack) -> None:
    ledger = stack.deployment.contract("InferenceLedger")
    vault = stack.deployment.contract("StakingVault")
    user = stack.account(SHARED_ACCOUNT).address
    receipt = (
        b"\x11" * 32,
        user,
        7,
        b"\x22" * 32,
        b"\x33" * 32,
        b"\x44" * 32,
        10**12,
        1_700_000_000,
    )
    proof = [b"\x55" * 32, b"\x66" * 32]
    got = js.evaluate(
        """([user, proof]) => abi.calldata(
            Object.keys(abi.SELECTORS).find((k) => k.includes('verifyReceipt')),
            [3n, ['0x' + '11'.repeat(32), user, 7n, '0x' + '22'.repeat(32), '0x' + '33'.repeat(32),
              '0x' + '44'.repeat(32), 10n ** 12n, 1700000000n], proof])""",
        [user, ["0x" + p.hex() for p in proof]],
    )
    want = ledger.functions.verifyReceipt(3, receipt, proof)._encode_transaction_data()
    assert got == want
    got = js.evaluate(
        "(a) => abi.calldata('StakingVault.stake(address token,uint256 amount)', [a, 2n ** 255n])",
        user,
    )
    assert got == vault.functions.stake(user, 2**255)._encode_transaction_data()
    assert js.evaluate("() => abi.calldata('InferenceLedger.deposit()')") == "0xd0e30db0"
    with pytest.raises(Exception, match="does not fit uint256"):
        js.evaluate(
            "(a) => abi.calldata('StakingVault.stake(address token,uint256 amount)', [a, -1n])",
            user,
        )
    with pytest.raises(Exception, match="not an address"):
        js.evaluate(
            "() => abi.calldata('StakingVault.stake(address token,uint256 amount)', ['0x12', 1n])"
        )


def test_the_page_decodes_custom_errors_and_revert_strings(js: Page) -> None:
    account = "0x" + "ab" * 20
    data = (
        "0xb7f60d37"
        + abi_encode(["address", "address", "uint256", "uint256"], [account, account, 5, 9]).hex()
    )
    decoded = js.evaluate(
        "(d) => { const r = abi.decodeRevert(d); return [r.name, r.args.map((a) => a.name + '=' + a.value)]; }",
        data,
    )
    assert decoded == [
        "StakingVaultInsufficientStake",
        [f"account={account}", f"token={account}", "staked=5", "requested=9"],
    ]
    reason = "0x08c379a0" + abi_encode(["string"], ["ALLOWANCE_EXCEEDED"]).hex()
    assert js.evaluate("(d) => abi.decodeRevert(d).args[0].value", reason) == "ALLOWANCE_EXCEEDED"
    assert js.evaluate("() => abi.decodeRevert('0xdeadbeef')") is None
    assert js.evaluate("() => abi.decodeRevert('0x')") is None


@pytest.mark.parametrize(
    ("text", "wei"),
    [("1", 10**18), ("0.5", 5 * 10**17), (".25", 25 * 10**16), ("2.", 2 * 10**18),
     ("0.000000000000000001", 1), (" 3 ", 3 * 10**18), ("123456789.123456789", 123456789123456789 * 10**9)],
)  # fmt: skip
def test_the_page_parses_and_formats_amounts_exactly(js: Page, text: str, wei: int) -> None:
    assert js.evaluate("(t) => abi.parseUnits(t).toString()", text) == str(wei)
    formatted = js.evaluate("(w) => abi.formatUnits(BigInt(w))", str(wei))
    assert formatted + " ETH" == eth(wei)


def test_the_page_siwe_message_is_what_the_siwe_library_parses(js: Page) -> None:
    address = to_checksum_address("0x" + "cd" * 20)
    text = js.evaluate(
        """(a) => siwe.siweMessage({domain: 'gw.example:8443', address: a,
             uri: 'https://gw.example:8443/app/', chainId: 534351, nonce: 'abcdef0123456789x',
             issuedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))})""",
        address,
    )
    parsed = siwe.SiweMessage.from_message(text)
    assert parsed.domain == "gw.example:8443"
    assert parsed.address == address
    assert str(parsed.uri) == "https://gw.example:8443/app/"
    assert parsed.chain_id == 534351
    assert parsed.nonce == "abcdef0123456789x"
    assert parsed.issued_at == "2026-01-02T03:04:05.006Z"
    assert parsed.statement == js.evaluate("() => siwe.STATEMENT")
    assert js.evaluate("() => siwe.utf8Hex('é')") == "0xc3a9"


# ------------------------------------------------------------------------------ routes


def test_config_names_the_chain_contracts_staking_tokens_and_eip712_domain(
    stack: WebStack,
) -> None:
    config = httpx.get(stack.url + "/v1/config").json()
    addresses = stack.deployment.addresses
    assert config["chain_id"] == stack.anvil.chain_id
    assert config["public_url"] == stack.url
    assert config["contracts"] == {
        name: addresses[name]
        for name in ("StakingVault", "InferenceLedger", "SubnetRegistry", "NodeRegistry")
    }
    assert config["tokens"] == [
        {"symbol": "stETH", "address": addresses["MockStETH"]},
        {"symbol": "wstETH", "address": addresses["MockWstETH"]},
        {"symbol": "rETH", "address": addresses["MockRETH"]},
    ]
    assert config["eip712"] == {"name": "2PM InferenceLedger", "version": "1"}


def test_the_page_is_served_with_a_strict_content_security_policy(stack: WebStack) -> None:
    for path in ("/app/", "/app/app.js", "/app/style.css"):
        r = httpx.get(stack.url + path)
        assert r.status_code == 200, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "javascript" in httpx.get(stack.url + "/app/abi.js").headers["content-type"]
    index = httpx.get(stack.url + "/app/").text
    assert "http://" not in index and "https://" not in index  # nothing from elsewhere
    root = httpx.get(stack.url + "/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (302, "/app/")


@pytest.mark.parametrize(
    "path", ["/app/missing.js", "/app/../pyproject.toml", "/app/%2e%2e/_web.py"]
)
def test_files_outside_the_page_are_not_found(stack: WebStack, path: str) -> None:
    r = httpx.get(stack.url + path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert json.loads(r.text)["status"] == 404
