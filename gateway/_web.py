"""The web page for wallet users, and the small JSON config it reads.

The page is static (``gateway/web/``: HTML, ES modules, CSS; no build step, no CDN) and is
served under ``/app/``; ``GET /`` redirects there. It talks to the gateway's JSON API with the
session cookie and to the chain only through the user's EIP-1193 wallet. ``GET /v1/config``
tells it the chain id, the contract addresses and the staking tokens.

Mount with ``create_app(..., extra_route_handlers=web_route_handlers())`` or by adding
``*web_route_handlers()`` to the app's route handlers.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect
from litestar.router import Router
from litestar.static_files import create_static_files_router

from contracts.eip712 import LEDGER_DOMAIN_NAME, LEDGER_DOMAIN_VERSION
from gateway._errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from gateway._openapi import ConfigAnswer, answer, problems
from gateway._operator import operator_route_handler

__all__ = ["WEB_DIR", "WEB_PATH", "web_route_handlers"]

WEB_DIR = Path(__file__).resolve().parent / "web"
"""Directory of the page's static files."""
WEB_PATH = "/app"
"""URL path the page is served under (``/app/`` is ``index.html``)."""
SEAL_PATH = WEB_PATH + "/vendor/node-seal"
"""URL path of node-seal's ES module and WebAssembly (``ckks.js`` imports it from there)."""
SEAL_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "node-seal" / "dist"
"""node-seal's files as ``./dev install`` puts them (npm, exact version in package.json); the
page's private prediction needs them, nothing is fetched from a CDN."""
SEAL_FILES = ("index_throws.js", "seal_throws.js", "seal_throws.wasm")
"""The files served: the ESM entry, the Emscripten glue, the WebAssembly."""
DEV_RPC_METHODS = frozenset(
    {
        "eth_chainId", "eth_call", "eth_estimateGas", "eth_blockNumber", "eth_getBalance",
        "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getBlockByNumber",
        "eth_sendTransaction", "personal_sign", "eth_signTypedData_v4",
    }
)  # fmt: skip
"""What the page-local dev wallet may ask the local chain (reads, and what a wallet signs)."""
CONFIG_TTL_S = 30.0
"""Seconds ``GET /v1/config`` reuses the staking tokens it read from the chain."""

CORE_CONTRACTS = ("StakingVault", "InferenceLedger", "SubnetRegistry", "NodeRegistry")
"""Contracts whose addresses the page is told (the ones present in the settings)."""
TOKEN_KINDS = {1: "stETH", 2: "wstETH", 3: "rETH"}
"""``StakingVault.TokenKind`` enum values -> token symbol (contracts/src/StakingVault.sol)."""

PAGE_HEADERS = {
    # The page loads only its own files and talks only to its own origin; the wallet is an
    # injected object, not a network peer, so connect-src 'self' is enough.
    "Content-Security-Policy": (
        # 'wasm-unsafe-eval' lets the page compile node-seal's WebAssembly (no JS eval).
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Security headers sent with every file of the page."""


def _add_page_headers(response: Any) -> Any:
    """``after_request`` hook of the static router: security headers on every file."""
    response.headers.update(PAGE_HEADERS)
    return response


class _TokenCache:
    """One cached answer (the vault's staking tokens) with an expiry; bounded to one entry."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.value: list[dict[str, str]] | None = None
        self.expires_at_s = 0.0

    def get(self, now_s: float) -> list[dict[str, str]] | None:
        return self.value if now_s < self.expires_at_s else None

    def put(self, value: list[dict[str, str]], now_s: float) -> None:
        self.value = value
        self.expires_at_s = now_s + self.ttl_s


async def _staking_tokens(chain: Any) -> list[dict[str, str]]:
    """The tokens the StakingVault lists and accepts, read from the chain.

    Args:
        chain: The gateway's ``ChainReader``.

    Returns:
        ``[{"symbol": "stETH", "address": "0x…"}, …]`` in listing order, only tokens that
        accept new stakes.

    Raises:
        ServiceUnavailable: The chain is unreachable.
    """
    try:
        listed = await chain.vault.functions.tokens().call()
        tokens = []
        for address in listed:
            kind, enabled = await chain.vault.functions.tokenConfig(address).call()
            if enabled and int(kind) in TOKEN_KINDS:
                tokens.append({"symbol": TOKEN_KINDS[int(kind)], "address": str(address)})
    except Exception as exc:
        raise ServiceUnavailable("the chain is unreachable") from exc
    return tokens


def dev_rpc_refusal(client_host: str | None, origin: str | None, gateway_origin: str) -> str | None:
    """Why a ``POST /v1/dev/rpc`` caller is refused, or None for the local page.

    The development wallet is for a browser on the machine running ``twopm up``: the request
    must come from a loopback address (a gateway bound to ``0.0.0.0`` by mistake still
    serves it to nobody else), and a browser's request must carry the page's own ``Origin``
    (another site, or a DNS-rebinding name that resolves to 127.0.0.1, cannot make anvil
    sign; browsers send ``Origin`` with every POST, https://fetch.spec.whatwg.org/#origin-header).

    Args:
        client_host: The TCP peer's address (None when the server does not know it).
        origin: The request's ``Origin`` header, if any.
        gateway_origin: ``scheme://authority`` of the gateway's public URL.

    Returns:
        A one-line reason, or None when the caller may use the development wallet.
    """
    try:
        peer = ipaddress.ip_address(client_host) if client_host is not None else None
    except ValueError:
        peer = None
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # a dual-stack socket reports 127.0.0.1 as ::ffff:127.0.0.1
    local = peer is not None and peer.is_loopback
    if not local:
        return f"the development wallet answers only callers on loopback, not {client_host}"
    if origin is not None and origin != gateway_origin:
        return f"the development wallet answers only the page at {gateway_origin}, not {origin}"
    return None


def _dev_signer(method: str, params: list[Any]) -> str | None:
    """The account a signing request signs for (None for reads)."""
    try:
        if method == "eth_sendTransaction":
            return str(params[0]["from"])
        if method == "personal_sign":
            return str(params[1])
        if method == "eth_signTypedData_v4":
            return str(params[0])
    except (IndexError, KeyError, TypeError):
        raise BadRequest(f"{method} needs the signing account in its params") from None
    return None


def web_route_handlers() -> list[BaseRouteHandler | Router]:
    """The page's routes: ``/app/*``, ``GET /``, ``GET /v1/config``, ``GET /v1/operator/overview``.

    ``/app/*`` are the static files (the operator's dashboard is ``/app/operator/``), ``GET /``
    redirects to ``/app/``.

    Each call builds fresh handlers (with their own token cache), one set per app.

    Returns:
        Route handlers and a router, for ``Litestar(route_handlers=…)``.
    """
    cache = _TokenCache(CONFIG_TTL_S)

    @get(
        "/v1/config",
        tags=["web"],
        responses={200: answer(ConfigAnswer, "Chain id, addresses, tokens"), **problems(503)},
    )
    async def web_config(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """What the web page needs to talk to the chain: chain id, addresses, tokens.

        Returns ``{chain_id, public_url, contracts: {name: address}, tokens: [{symbol,
        address}], eip712: {name, version}}``; without a chain connection ``contracts`` comes
        from the settings and ``tokens`` is empty.
        """
        services = request.app.state.services
        settings = services.settings
        chain = services.chain
        tokens: list[dict[str, str]] = []
        if chain is not None:
            addresses: dict[str, str] = dict(chain.addresses)
            now_s = time.monotonic()
            cached = cache.get(now_s)
            if cached is None:
                cached = await _staking_tokens(chain)
                cache.put(cached, now_s)
            tokens = cached
        else:
            addresses = settings.contract_addresses()
        body: dict[str, Any] = {
            "chain_id": settings.chain_id,
            "public_url": settings.origin,
            "contracts": {n: addresses[n] for n in CORE_CONTRACTS if n in addresses},
            "tokens": tokens,
            "eip712": {"name": LEDGER_DOMAIN_NAME, "version": LEDGER_DOMAIN_VERSION},
        }
        dev = settings.dev_account_list()
        if dev:
            body["dev_accounts"] = dev  # a local `twopm up` only (see GatewaySettings)
        return body

    @post(
        "/v1/dev/rpc",
        tags=["web"],
        status_code=200,
        include_in_schema=False,
    )
    async def dev_rpc(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """JSON-RPC of the local chain for the page's development wallet (``twopm up`` only).

        Forwards one ``{method, params}`` request to the chain when the gateway has
        ``dev_accounts``; the signing methods only for those accounts (anvil holds their keys).

        Raises:
            NotFound: The gateway offers no dev accounts (every deployed gateway).
            BadRequest: Malformed body or a method outside ``DEV_RPC_METHODS``.
            Forbidden: A caller off loopback or from another origin (:func:`dev_rpc_refusal`),
                or a signing request for another account.
            ServiceUnavailable: The chain is unreachable.
        """
        services = request.app.state.services
        dev = services.settings.dev_account_list()
        if not dev:
            raise NotFound("this gateway offers no development accounts")
        client = request.client.host if request.client is not None else None
        refusal = dev_rpc_refusal(client, request.headers.get("origin"), services.settings.origin)
        if refusal is not None:
            raise Forbidden(refusal)
        if services.chain is None:
            raise NotFound("this gateway has no chain to forward to")
        try:
            data = msgspec.json.decode(await request.body())
            method = str(data["method"])
            params = list(data.get("params") or [])
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError) as exc:
            raise BadRequest("the body must be {method, params}") from exc
        if method not in DEV_RPC_METHODS:
            raise BadRequest(f"{method} is not forwarded to the development chain")
        signer = _dev_signer(method, params)
        if signer is not None and signer.lower() not in dev:
            raise Forbidden(f"{signer} is not a development account of this stack")
        try:
            answer = await services.chain.w3.provider.make_request(method, params)
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc
        return {k: answer[k] for k in ("result", "error") if k in answer}

    @get("/", include_in_schema=False, sync_to_thread=False)
    def web_root() -> Redirect:
        """Send browsers at the gateway's root to the page."""
        return Redirect(path=WEB_PATH + "/", status_code=302)

    static = create_static_files_router(
        path=WEB_PATH,
        directories=[WEB_DIR],
        html_mode=True,
        name="web",
        cache_control=CacheControlHeader(no_cache=True),
        after_request=_add_page_headers,
        include_in_schema=False,
    )
    handlers: list[BaseRouteHandler | Router] = [
        web_config,
        web_root,
        dev_rpc,
        operator_route_handler(),
    ]
    if all((SEAL_DIR / name).is_file() for name in SEAL_FILES):
        handlers.append(
            create_static_files_router(
                path=SEAL_PATH,
                directories=[SEAL_DIR],
                name="node-seal",
                cache_control=CacheControlHeader(max_age=3600),
                after_request=_add_page_headers,
                include_in_schema=False,
            )
        )
    return [*handlers, static]
