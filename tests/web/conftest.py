from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from service_support import create_subnet, start_signer
from web_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MIN_STAKE_WEI,
    PRICE_WEI,
    SHARED_ACCOUNT,
    PageOpener,
    WalletBridge,
    WebStack,
    screenshot,
    start_gateway,
)

from contracts import Anvil, Deployment
from core.net import free_port


@pytest.fixture(scope="module")
def stack(
    anvil: Anvil,
    deployment: Deployment,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[WebStack]:
    """The running stack for one test module; the chain is reverted afterwards.

    A module that sets ``DEV_ACCOUNT_INDICES`` gets a gateway offering those anvil accounts as
    the page's development wallet (what ``twopm up`` sets).
    """
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
    try:
        dev = getattr(request.module, "DEV_ACCOUNT_INDICES", ())
        if dev:
            env["TWOPM_GATEWAY_DEV_ACCOUNTS"] = ",".join(anvil.accounts[i].address for i in dev)
        (root / "models").mkdir()
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
    """Save a screenshot of the page under test-artifacts/web/ (gitignored): ``screenshot``."""
    return screenshot
