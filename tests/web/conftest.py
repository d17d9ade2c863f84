from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from service_support import create_subnet, start_signer
from web_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    MIN_STAKE_WEI,
    PRICE_WEI,
    SHARED_ACCOUNT,
    WalletBridge,
    WebStack,
    provider_script,
    start_gateway,
)

from contracts import Anvil, Deployment
from core.net import free_port


@pytest.fixture(scope="module")
def stack(
    anvil: Anvil, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebStack]:
    """The running stack for one test module; the chain is reverted afterwards."""
    snapshot = anvil.snapshot()
    root = tmp_path_factory.mktemp("web")
    subnet_id = create_subnet(
        anvil.w3,
        deployment,
        anvil.accounts[0].private_key,
        name="web",
        price_wei=PRICE_WEI,
        min_stake_wei=MIN_STAKE_WEI,
    )
    # tests/conftest.py deploys with account 1 as the ledger's operator: the signer holds it.
    signer = start_signer(
        root, deployment, anvil.accounts[1].private_key, limits=None, scrypt_n=2**12
    )
    port = free_port()
    admin_key = secrets.token_hex(16)
    admin_key_file = root / "admin.key"
    admin_key_file.write_text(admin_key + "\n")
    admin_key_file.chmod(0o600)
    # The session cookie keeps its default Secure flag: Chromium treats http://127.0.0.1 as a
    # secure context and stores it.
    env = {
        "TWOPM_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWOPM_GATEWAY_CHAIN_ID": str(anvil.chain_id),
        "TWOPM_GATEWAY_RPC_URL": anvil.rpc_url,
        "TWOPM_GATEWAY_CONTRACTS": json.dumps(deployment.addresses),
        "TWOPM_GATEWAY_QUEUE_PATH": str(root / "receipts.sqlite3"),
        "TWOPM_GATEWAY_SIGNER_URL": signer.url,
        "TWOPM_GATEWAY_SIGNER_CALLER_ID": "gateway",
        "TWOPM_GATEWAY_SIGNER_SECRET": signer.secret_hex,
        "TWOPM_GATEWAY_ENABLE_NOOP_ROUTE": "1",  # a billed call that makes a receipt
        "TWOPM_GATEWAY_BATCH_MAX_AGE_S": "3",  # the tour's three paid calls make one batch
        "TWOPM_GATEWAY_BATCH_MAX_RECEIPTS": "3",
        "TWOPM_GATEWAY_EVENT_POLL_INTERVAL_S": "0.2",
        "TWOPM_GATEWAY_STAKE_CACHE_TTL_S": "0.5",
        "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "0",
        "TWOPM_GATEWAY_ADMIN_KEY_FILE": str(admin_key_file),
        "TWOPM_GATEWAY_MODEL_STORE": str(root / "models"),
    }
    (root / "models").mkdir()
    try:
        gateway = start_gateway(root, port, env)
    except BaseException:
        signer.stop()
        raise
    try:
        yield WebStack(anvil, deployment, gateway, signer, subnet_id, admin_key, root / "models")
    finally:
        gateway.stop()
        signer.stop()
        anvil.revert(snapshot)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (never a Playwright-downloaded browser)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _keep_error(errors: list[str], message: Any) -> None:
    # Chromium logs every 4xx answer as "Failed to load resource"; the page expects some
    # (401 before sign-in, the 404 of an unknown receipt). Anything else is a bug.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)


class PageOpener:
    """Opens the page in fresh browser contexts, each with a test wallet for an anvil account.

    ``open(account_index, wallet=True, chain_id=None, known_chain_ids=None)`` returns the page
    and the wallet bridge (None without a wallet). The wallet starts on ``chain_id`` (anvil's by
    default) and can switch to ``known_chain_ids`` (anvil's and its start chain by default).
    Console errors of the pages are collected in ``errors``.
    """

    def __init__(self, browser: Browser, stack: WebStack) -> None:
        self.browser = browser
        self.stack = stack
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open(
        self,
        index: int,
        *,
        wallet: bool = True,
        chain_id: int | None = None,
        known_chain_ids: list[int] | None = None,
    ) -> tuple[Page, WalletBridge | None]:
        stack = self.stack
        context = self.browser.new_context(viewport={"width": 1100, "height": 900})
        self.contexts.append(context)
        bridge = None
        if wallet:
            account = stack.account(index).address
            bridge = WalletBridge(stack.anvil.rpc_url, account)
            context.expose_function("__twopmRpc", bridge)
            start = chain_id or stack.anvil.chain_id
            known = known_chain_ids or sorted({start, stack.anvil.chain_id})
            context.add_init_script(provider_script(account, start, known))
        page = context.new_page()
        page.on("console", lambda m: _keep_error(self.errors, m))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(stack.url + "/app/")
        page.wait_for_selector("body[data-ready]")
        return page, bridge

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        assert not self.errors, self.errors


@pytest.fixture
def open_page(browser: Browser, stack: WebStack) -> Iterator[Callable[..., tuple[Page, Any]]]:
    """``PageOpener.open`` for one test; console errors of its pages fail the test."""
    opener = PageOpener(browser, stack)
    yield opener.open
    opener.close()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, stack: WebStack) -> Iterator[tuple[Page, WalletBridge]]:
    """One page signed in as anvil account 9, shared by the tests that change nothing."""
    opener = PageOpener(browser, stack)
    page, bridge = opener.open(SHARED_ACCOUNT)
    assert bridge is not None
    page.click("#connect")
    page.wait_for_selector("#signin:not([disabled])")
    page.click("#signin")
    page.wait_for_selector("#screen-account:not([hidden])")
    yield page, bridge
    opener.close()


@pytest.fixture(scope="session")
def artifacts() -> Callable[[Page, str], Path]:
    """Save a screenshot of the page under test-artifacts/web/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot
