"""The local stack the page is tested against: a signer process and a gateway process (with the
page mounted) on loopback, over the session's anvil; and the bridge from the test wallet in the
browser to anvil's JSON-RPC. ``start_signer`` comes from ``service_support``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page
from service_support import SignerProcess
from web3 import Web3

from contracts import Anvil, Deployment, Transactor
from contracts.chain import DevAccount
from core.proc import spawn, terminate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = REPO / "test-artifacts" / "web"
PROVIDER_JS = (HERE / "eip1193_provider.js").read_text()

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# What the test wallet forwards to anvil: reads, and the signing methods of a wallet.
FORWARDED = frozenset(
    {
        "eth_chainId", "eth_call", "eth_estimateGas", "eth_blockNumber", "eth_getBalance",
        "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_sendTransaction",
        "eth_getBlockByNumber",
        "personal_sign", "eth_signTypedData_v4",
    }
)  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, 10.0)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}


@dataclass
class Process:
    """A child process we started, and where it logs."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        _stop(self.proc)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_gateway(root: Path, port: int, env: dict[str, str]) -> Process:
    """The gateway with the page mounted, as its own process (``web_gateway.py``)."""
    log = root / "gateway.log"
    argv = [sys.executable, str(HERE / "web_gateway.py"), str(port)]
    proc = spawn(argv, log_path=log, env={**_clean_env(), **env}, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Process(url, proc, log)
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError("gateway did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)


@dataclass
class WalletBridge:
    """The Python side of the test wallet: forwards its JSON-RPC to anvil for one account.

    Like a wallet, it only sends and signs for its own account; every call is kept in
    ``calls`` so tests can see what the page asked the wallet for.
    """

    rpc_url: str
    account: str
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)

    def _own(self, method: str, params: list[Any]) -> bool:
        if method == "eth_sendTransaction":
            return str(params[0].get("from", "")).lower() == self.account.lower()
        if method == "personal_sign":
            return str(params[1]).lower() == self.account.lower()
        if method == "eth_signTypedData_v4":
            return str(params[0]).lower() == self.account.lower()
        return True

    def __call__(self, payload: str) -> str:
        request = json.loads(payload)
        method, params = request["method"], request.get("params") or []
        self.calls.append((method, params))
        if request.get("local"):  # answered by the wallet itself; only recorded
            return json.dumps({"result": None})
        if method not in FORWARDED:
            return json.dumps({"error": {"code": 4200, "message": f"unsupported: {method}"}})
        if not self._own(method, params):
            return json.dumps({"error": {"code": 4100, "message": "not this wallet's account"}})
        answer = httpx.post(
            self.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        return json.dumps({k: answer[k] for k in ("result", "error") if k in answer})

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


def provider_script(account: str, chain_id: int, known_chain_ids: list[int]) -> str:
    """The init script that installs the test wallet for ``account``.

    The wallet starts on ``chain_id`` and can switch to ``known_chain_ids``; its reads and
    signatures always go to anvil, so the page must switch to anvil's chain id.
    """
    return (
        PROVIDER_JS.replace("__ACCOUNT__", account)
        .replace("__CHAIN_ID__", hex(chain_id))
        .replace("__KNOWN_CHAINS__", json.dumps([hex(c) for c in known_chain_ids]))
    )


PRICE_WEI = 10**12
SHARED_ACCOUNT = 9
"""The anvil account of the shared signed-in page (tests that change nothing)."""
MIN_STAKE_WEI = 10**17


@dataclass
class WebStack:
    """anvil + contracts + signer + gateway (with the page), and a published subnet."""

    anvil: Anvil
    deployment: Deployment
    gateway: Process
    signer: SignerProcess
    subnet_id: int
    admin_key: str = ""
    """The gateway's admin key (``TWOPM_GATEWAY_ADMIN_KEY_FILE``), for the operator's dashboard."""
    model_store: Path | None = None
    """The gateway's model store (``TWOPM_GATEWAY_MODEL_STORE``): bundles written there serve."""

    @property
    def url(self) -> str:
        return self.gateway.url

    def account(self, index: int) -> DevAccount:
        return self.anvil.accounts[index]


def fund_steth(stack: WebStack, index: int, amount_wei: int) -> None:
    """Give a dev account stETH of the local stand-in by submitting ETH to it."""
    account = stack.account(index)
    steth = stack.deployment.contract("MockStETH")
    Transactor(stack.anvil.w3, account.private_key).transact(
        steth.functions.submit(Web3.to_checksum_address(account.address)), value_wei=amount_wei
    )


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of ``page`` as ``test-artifacts/web/NAME.png`` (gitignored).

    Returns:
        The path written.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


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
