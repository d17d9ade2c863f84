"""The development wallet a local ``twopm up`` gateway offers the page (and nobody else does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from web_support import WebStack

from gateway import GatewaySettings, create_app
from gateway._errors import ConfigurationError
from gateway._web import dev_rpc_refusal

DEV_ACCOUNT_INDICES = (6, 7)
TIMEOUT_MS = 30_000


def test_the_page_offers_the_stacks_dev_accounts_and_walks_sign_in_deposit_and_cap(
    stack: WebStack, open_page: Callable[..., tuple[Page, Any]]
) -> None:
    page, _ = open_page(DEV_ACCOUNT_INDICES[0], wallet=False)
    box = page.locator("#dev-wallet")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Development only")
    expect(page.locator("#no-wallet")).to_be_hidden()
    options = page.locator("#dev-account option")
    expect(options).to_have_count(2)
    chosen = stack.account(DEV_ACCOUNT_INDICES[1]).address
    page.select_option("#dev-account", chosen.lower())
    page.click("#dev-use")
    expect(page.locator("#notice")).to_contain_text("development only", timeout=TIMEOUT_MS)
    page.click("#signin")  # personal_sign, signed by anvil through /v1/dev/rpc
    expect(page.locator("#screen-account")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#me-address")).to_have_text(chosen)
    page.click("#tabs a[data-screen=credit]")
    page.fill("#deposit-amount", "0.01")
    page.click("#deposit-button")  # eth_sendTransaction
    expect(page.locator("#notice")).to_contain_text("Deposit 0.01 ETH: done", timeout=TIMEOUT_MS)
    ledger = stack.deployment.contract("InferenceLedger")
    assert ledger.functions.accountOf(chosen).call()[0] == 10**16
    page.fill("#cap-amount", "0.005")
    page.fill("#cap-days", "7")
    page.click("#cap-button")  # eth_signTypedData_v4
    expect(page.locator("#notice")).to_contain_text("Spending cap", timeout=TIMEOUT_MS)
    assert ledger.functions.authorizationOf(chosen).call()[0] == 5 * 10**15


def test_the_dev_rpc_signs_only_for_the_stacks_dev_accounts_and_forwards_only_wallet_methods(
    stack: WebStack,
) -> None:
    dev = stack.account(DEV_ACCOUNT_INDICES[0]).address
    other = stack.account(3).address
    rpc = stack.url + "/v1/dev/rpc"
    ok = httpx.post(rpc, json={"method": "personal_sign", "params": ["0x68690a", dev]})
    assert ok.status_code == 200 and ok.json()["result"].startswith("0x")
    refused = httpx.post(rpc, json={"method": "personal_sign", "params": ["0x68690a", other]})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    tx = {"from": other, "to": dev, "value": "0x1"}
    assert (
        httpx.post(rpc, json={"method": "eth_sendTransaction", "params": [tx]}).status_code == 403
    )
    for method in ("anvil_setBalance", "eth_sign", "evm_mine"):
        r = httpx.post(rpc, json={"method": method, "params": []})
        assert r.status_code == 400, method
    assert httpx.post(rpc, content=b"not json").status_code == 400
    for unsigned in (
        {"method": "personal_sign", "params": ["0x68690a"]},
        {"method": "eth_sendTransaction", "params": [{"to": dev, "value": "0x1"}]},
        {"method": "eth_signTypedData_v4", "params": []},
    ):
        r = httpx.post(rpc, json=unsigned)
        assert r.status_code == 400 and "needs the signing account" in r.json()["detail"], r.text
    page = {"Origin": stack.url}
    assert httpx.post(rpc, json={"method": "eth_chainId"}, headers=page).status_code == 200
    # another site (or a DNS-rebinding name) in the user's browser cannot make anvil sign
    for origin in ("http://evil.example", "null", stack.url.replace("127.0.0.1", "localhost")):
        r = httpx.post(
            rpc,
            json={"method": "personal_sign", "params": ["0x68690a", dev]},
            headers={"Origin": origin},
        )
        assert r.status_code == 403, origin
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "only the page at" in r.json()["detail"]
    config = httpx.get(stack.url + "/v1/config").json()
    assert config["dev_accounts"] == [stack.account(i).address.lower() for i in DEV_ACCOUNT_INDICES]


def test_a_gateway_without_the_setting_has_no_dev_rpc_and_no_dev_accounts(
    stack: WebStack, tmp_path: Path
) -> None:
    from service_support import serve

    settings = GatewaySettings(
        public_url="http://127.0.0.1:1", queue_path=tmp_path / "q.sqlite3", recorder_enabled=False
    )
    with serve(create_app(settings), start_timeout_s=20) as url:
        assert httpx.post(url + "/v1/dev/rpc", json={"method": "eth_chainId"}).status_code == 404
        assert "dev_accounts" not in httpx.get(url + "/v1/config").json()


@pytest.mark.parametrize(
    ("rpc_url", "public_url"),
    [
        ("http://10.0.0.5:8545", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8545", "https://gw.example.org"),
        (None, "http://127.0.0.1:8000"),
    ],
)
def test_the_gateway_refuses_dev_accounts_off_loopback(
    tmp_path: Path, rpc_url: str | None, public_url: str
) -> None:
    settings = GatewaySettings(
        public_url=public_url,
        rpc_url=rpc_url,
        dev_accounts="0x" + "11" * 20,
        queue_path=tmp_path / "q.sqlite3",
        recorder_enabled=False,
    )
    with pytest.raises(ConfigurationError, match="loopback"):
        create_app(settings)


def test_a_malformed_dev_account_is_refused(tmp_path: Path) -> None:
    settings = GatewaySettings(
        public_url="http://127.0.0.1:1",
        rpc_url="http://127.0.0.1:2",
        dev_accounts="0x1234",
        queue_path=tmp_path / "q.sqlite3",
    )
    with pytest.raises(ConfigurationError, match="not a 0x-hex address"):
        settings.dev_account_list()


@pytest.mark.parametrize(
    ("client", "origin", "refused"),
    [
        ("127.0.0.1", None, None),
        ("127.0.0.1", "http://127.0.0.1:8000", None),
        ("::1", "http://127.0.0.1:8000", None),
        ("::ffff:127.0.0.1", None, None),
        ("::ffff:192.0.2.2", None, "only callers on loopback"),
        ("192.0.2.2", None, "only callers on loopback"),
        ("192.0.2.2", "http://127.0.0.1:8000", "only callers on loopback"),
        (None, None, "only callers on loopback"),
        ("testclient", None, "only callers on loopback"),
        ("127.0.0.1", "http://evil.example", "only the page at"),
        ("127.0.0.1", "null", "only the page at"),
    ],
)
def test_the_dev_rpc_answers_only_the_local_page(
    client: str | None, origin: str | None, refused: str | None
) -> None:
    reason = dev_rpc_refusal(client, origin, "http://127.0.0.1:8000")
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
