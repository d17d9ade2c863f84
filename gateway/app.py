"""The Litestar app: routes, dependencies, background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi.config import OpenAPIConfig
from litestar.params import FromPath, JSONBody, PathParameter
from litestar.response.base import ASGIResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.protocol import SESSION_COOKIE
from gateway._auth import Caller
from gateway._errors import (
    BadRequest,
    ConfigurationError,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    problem_response,
)
from gateway._inference import Inference, inference_route_handlers
from gateway._metrics import MetricsMiddleware
from gateway._openapi import (
    COMPONENTS,
    KEY_OR_SESSION,
    PAID_RESPONSES,
    SESSION_ONLY,
    AuthorizationAnswer,
    KeysAnswer,
    MeAnswer,
    NewKeyAnswer,
    NonceAnswer,
    ReceiptAnswer,
    SessionAnswer,
    answer,
    problem_spec,
    problems,
)
from gateway._services import (
    Services,
    build_services,
    caller_of,
    paid_response,
    paying_caller_of,
    services_of,
    session_caller_of,
)
from gateway._settings import GatewaySettings
from gateway._state import MemoryState
from gateway._web import web_route_handlers

__all__ = ["Services", "build_services", "create_app"]

_log = logging.getLogger("gateway")

SHUTDOWN_GRACE_S = 0.5
"""Seconds shutdown waits for background jobs; an open batch left behind resumes at start."""
NONCE_RATE_PER_S = 2.0
"""Nonces one client IP may fetch per second (refill)."""
NONCE_BURST = 20
"""Nonces one client IP may fetch at once."""


# ---------------------------------------------------------------------------- bodies


class VerifyBody(msgspec.Struct):
    """``POST /v1/auth/verify``: the signed EIP-4361 text and its signature."""

    message: str
    signature: str


class KeyBody(msgspec.Struct):
    """``POST /v1/keys``: label and optional subnet scope (null = every subnet)."""

    name: str = ""
    subnets: list[int] | None = None


class NoopBody(msgspec.Struct):
    """``POST /v1/subnets/{id}/noop``: how many rows to bill."""

    rows: int = 1


class SpendingAuthorizationBody(msgspec.Struct):
    """``POST /v1/spending-authorizations``: an EIP-712 ``SpendingAuthorization``."""

    user: str
    max_total_spend_wei: str
    expiry: int
    nonce: int
    signature: str


# ---------------------------------------------------------------------------- routes


@get("/healthz", sync_to_thread=False, tags=["service"])
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@get("/metrics", tags=["service"], include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition."""
    services = services_of(request)
    services.metrics.queue_depth.set(await services.queue.depth())
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@get(
    "/v1/auth/nonce",
    tags=["auth"],
    responses={200: answer(NonceAnswer, "A single-use nonce"), **problems(429)},
)
async def auth_nonce(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A fresh single-use SIWE nonce, and the fields the message must carry."""
    services = services_of(request)
    s = services.settings
    host = request.client.host if request.client else "unknown"
    wait_s = await services.state.take_token(
        "nonce-ip:" + host, rate_per_s=NONCE_RATE_PER_S, burst=NONCE_BURST, now_s=services.now_s()
    )
    if wait_s > 0:
        raise RateLimited("too many nonces requested from this address", retry_after_s=wait_s)
    nonce = await services.auth.issue_nonce()
    return {
        "nonce": nonce,
        "domain": s.domain,
        "uri": s.origin,
        "chain_id": s.chain_id,
        "expires_in_s": s.nonce_ttl_s,
    }


@post(
    "/v1/auth/verify",
    status_code=200,
    tags=["auth"],
    responses={
        200: answer(SessionAnswer, "Signed in; the twopm_session cookie carries the session"),
        **problems(400, 413),
        401: problem_spec(
            "Sign-in rejected; the problem's `reason` says why (`nonce-reused`, `expired`, "
            "`domain-mismatch`, `chain-id-mismatch`, `bad-signature`, ...: "
            "gateway._errors.SIGN_IN_REASONS)"
        ),
    },
)
async def auth_verify(request: Request[Any, Any, Any], data: JSONBody[VerifyBody]) -> Response[Any]:
    """Check a signed SIWE message and set the session cookie."""
    services = services_of(request)
    session = await services.auth.verify(data.message, data.signature)
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session.token,
        max_age=session.expires_in_s,
        httponly=True,
        secure=services.settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return Response(
        {"address": session.address, "expires_in_s": session.expires_in_s}, cookies=[cookie]
    )


@post(
    "/v1/auth/logout",
    status_code=204,
    tags=["auth"],
    response_cookies=[
        Cookie(
            key=SESSION_COOKIE,
            value="",
            max_age=0,
            httponly=True,
            path="/",
            description="Cleared: the session ends",
        )
    ],
)
async def auth_logout(request: Request[Any, Any, Any]) -> None:
    """End the session (idempotent) and clear the cookie; no body."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await services_of(request).auth.logout(token)


@get(
    "/v1/me",
    tags=["auth"],
    dependencies={"caller": Provide(caller_of)},
    security=KEY_OR_SESSION,
    responses={200: answer(MeAnswer, "The caller"), **problems(401, 502, 503)},
)
async def me(request: Request[Any, Any, Any], caller: NamedDependency[Caller]) -> dict[str, Any]:
    """Who am I: address, active stake, tier, credit and spending cap left."""
    services = services_of(request)
    out: dict[str, Any] = {
        "address": caller.address,
        "via": caller.via,
        "key_id": caller.key_id,
        "outstanding_wei": str(await services.state.outstanding(caller.user)),
    }
    billing = services.billing
    if billing is not None:
        chain = billing.chain
        stake = await chain.stake_wei(caller.address)
        view = await chain.credit_view(caller.address)
        out.update(
            {
                "stake_wei": str(stake),
                "tier": billing.tier_for(stake).name,
                "credit_wei": str(view.balance_wei),
                "pending_withdrawal_wei": str(view.pending_withdrawal_wei),
                "cap_wei": str(view.cap_wei),
                "cap_left_wei": str(view.cap_left_wei),
                "cap_expiry": view.cap_expiry_s,
                "spendable_wei": str(view.spendable_wei),
            }
        )
    return out


@post(
    "/v1/keys",
    status_code=201,
    tags=["keys"],
    dependencies={"caller": Provide(session_caller_of)},
    security=SESSION_ONLY,
    responses={
        201: answer(NewKeyAnswer, "The new key; `key` is its secret, shown this once"),
        **problems(400, 401, 413),
        403: problem_spec("Keys are managed from a signed-in session, not with an API key"),
        409: problem_spec("The address holds the most API keys it may; revoke one"),
    },
)
async def create_key(
    request: Request[Any, Any, Any], caller: NamedDependency[Caller], data: JSONBody[KeyBody]
) -> dict[str, Any]:
    """Create an API key; the secret is in this response only."""
    record, secret = await services_of(request).auth.create_key(
        caller.address, data.name, data.subnets
    )
    return {**record.public(), "key": secret}


@get(
    "/v1/keys",
    tags=["keys"],
    dependencies={"caller": Provide(session_caller_of)},
    security=SESSION_ONLY,
    responses={
        200: answer(KeysAnswer, "The signed-in address's keys, without secrets"),
        **problems(401),
        403: problem_spec("Keys are managed from a signed-in session, not with an API key"),
    },
)
async def list_keys(
    request: Request[Any, Any, Any], caller: NamedDependency[Caller]
) -> dict[str, Any]:
    """The signed-in address's API keys (without secrets)."""
    keys = await services_of(request).auth.list_keys(caller.address)
    return {"keys": [k.public() for k in keys]}


@delete(
    "/v1/keys/{key_id:str}",
    tags=["keys"],
    dependencies={"caller": Provide(session_caller_of)},
    security=SESSION_ONLY,
    responses={
        **problems(400, 401),
        403: problem_spec("Keys are managed from a signed-in session, not with an API key"),
        404: problem_spec("No API key of that id is the caller's"),
    },
)
async def revoke_key(
    request: Request[Any, Any, Any], caller: NamedDependency[Caller], key_id: FromPath[str]
) -> None:
    """Revoke an API key at once."""
    await services_of(request).auth.revoke_key(caller.address, key_id)


@post(
    "/v1/subnets/{subnet_id:int}/noop",
    status_code=200,
    tags=["subnets"],
    include_in_schema=False,
    responses=PAID_RESPONSES,
)
async def billed_noop(request: Request[Any, Any, Any], subnet_id: FromPath[int]) -> ASGIResponse:
    """A billed, gated call that runs no model (enabled by ``enable_noop_route``).

    It authenticates, reads and decodes its body and answers as the inference routes do
    (one read, hashed into the receipt as sent), so it measures their billing overhead
    without their model.
    """
    services = services_of(request)
    if not services.settings.enable_noop_route:
        raise NotFound("not found")
    caller = await paying_caller_of(request)
    billing = services.need_billing()
    request_body = await request.body()
    try:
        data = msgspec.json.decode(request_body or b"{}", type=NoopBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f'body must be JSON {{"rows": <int>}}: {exc}') from exc
    async with billing.billed(caller, subnet_id, rows=data.rows) as charge:
        response_body = msgspec.json.encode(
            {"subnet_id": subnet_id, "rows": data.rows, "price_wei": str(charge.price_wei)}
        )
        receipt = await charge.complete(request_body, response_body)
    return paid_response(
        response_body, media_type="application/json", receipt_id=receipt.receipt_id
    )


@post(
    "/v1/spending-authorizations",
    status_code=201,
    tags=["credit"],
    dependencies={"caller": Provide(caller_of)},
    security=KEY_OR_SESSION,
    responses={
        201: answer(AuthorizationAnswer, "Mined; the transaction that recorded it"),
        **problems(400, 401, 413, 502, 503),
        403: problem_spec("The authorisation is not the caller's own"),
        429: problem_spec(
            "Too many submissions from this address, or from everyone; see Retry-After"
        ),
    },
)
async def spending_authorization(
    request: Request[Any, Any, Any],
    caller: NamedDependency[Caller],
    data: JSONBody[SpendingAuthorizationBody],
) -> dict[str, Any]:
    """Submit your signed EIP-712 ``SpendingAuthorization`` on chain (the operator pays gas)."""
    services = services_of(request)
    if data.user.lower() != caller.user:
        raise Forbidden("you may only submit your own spending authorisation")
    try:
        cap_wei = int(data.max_total_spend_wei)
        signature = bytes.fromhex(data.signature.removeprefix("0x"))
    except ValueError as exc:
        raise BadRequest("max_total_spend_wei must be an integer, signature hex") from exc
    if not (0 <= cap_wei < 2**128 and 0 < data.expiry < 2**64 and 0 < data.nonce < 2**64):
        raise BadRequest("cap, expiry or nonce out of range")
    if data.expiry <= services.now_s():
        raise BadRequest("the authorisation has already expired")
    recorder = services.recorder
    if recorder is None:
        raise ServiceUnavailable("this gateway has no signer configured")
    await _authorization_tokens(
        services, caller.user, await recorder.authorization_budget_per_hour()
    )
    tx_hash = await recorder.submit_authorization(
        caller.address, cap_wei, data.expiry, data.nonce, signature
    )
    return {"tx_hash": tx_hash, "user": caller.address, "max_total_spend_wei": str(cap_wei)}


async def _authorization_tokens(services: Services, user: str, global_per_hour: int) -> None:
    """Take a token from the address's and from the gateway-wide authorisation buckets.

    Every submission is a transaction whose gas the operator pays and which counts against
    the signer's ``max_tx_per_hour``; these buckets keep the rest of that window for
    ``recordBatch``.

    Raises:
        RateLimited: Either bucket is empty (429 with ``Retry-After``).
    """
    s = services.settings
    now = services.now_s()
    per_address = max(1, s.authorization_per_address_per_hour)
    wait = await services.state.take_token(
        "authz:" + user, rate_per_s=per_address / 3600, burst=min(3, per_address), now_s=now
    )
    if wait > 0:
        raise RateLimited(
            f"at most {per_address} spending authorisations an hour per address",
            retry_after_s=wait,
        )
    budget = max(1, global_per_hour)
    wait = await services.state.take_token(
        "authz:*", rate_per_s=budget / 3600, burst=max(1, budget // 12), now_s=now
    )
    if wait > 0:
        raise RateLimited(
            "the gateway's budget for spending authorisations is spent for now",
            retry_after_s=wait,
        )


@get(
    "/v1/receipts/{receipt_id:str}",
    tags=["receipts"],
    dependencies={"caller": Provide(caller_of)},
    security=KEY_OR_SESSION,
    responses={
        200: answer(ReceiptAnswer, "The receipt, its batch and, once recorded, its proof"),
        **problems(400, 401),
        404: problem_spec("No receipt of that id is the caller's"),
    },
)
async def get_receipt(
    request: Request[Any, Any, Any],
    caller: NamedDependency[Caller],
    receipt_id: Annotated[str, PathParameter(pattern="^0x[0-9a-fA-F]{64}$")],
) -> dict[str, Any]:
    """A receipt of yours, its batch, Merkle proof and recording transaction."""
    services = services_of(request)
    stored = await services.queue.get(receipt_id.lower())
    if stored is None or stored.receipt.user.lower() != caller.user:
        raise NotFound(f"no receipt {receipt_id} of yours")
    out: dict[str, Any] = {
        "receipt": stored.receipt.to_json(),
        "status": stored.status,
        "batch": None,
        "proof": None,
    }
    if stored.batch_key:
        batch = await services.queue.get_batch(stored.batch_key)
        if batch is not None:
            from gateway._recorder import confirmations_of

            out["batch"] = {
                "status": batch.status,
                "batch_id": batch.batch_id,
                "subnet_id": batch.subnet_id,
                "root": batch.root,
                "tx_hash": batch.tx_hash,
                "block_number": batch.block_number,
                "size": len(batch.receipt_ids),
                "error": batch.error,
                **await confirmations_of(services, batch),
            }
            if batch.status == "recorded":
                from gateway._recorder import leaf_of, tree_of

                receipts = []
                for rid in batch.receipt_ids:
                    item = await services.queue.get(rid)
                    if item is not None:
                        receipts.append(item.receipt)
                tree = tree_of(receipts)
                leaf = leaf_of(stored.receipt)
                out["leaf"] = "0x" + leaf.hex()
                out["proof"] = ["0x" + p.hex() for p in tree.proof(leaf)]
    return out


ROUTES = [
    healthz,
    metrics,
    auth_nonce,
    auth_verify,
    auth_logout,
    me,
    create_key,
    list_keys,
    revoke_key,
    *inference_route_handlers(),
    billed_noop,
    spending_authorization,
    get_receipt,
    *web_route_handlers(),
]


def create_app(
    settings: GatewaySettings | None = None,
    *,
    services: Services | None = None,
    extra_route_handlers: list[Any] | None = None,
) -> Litestar:
    """Build the gateway app.

    Args:
        settings: Settings; read from ``TWOPM_GATEWAY_*`` when None.
        services: Pre-built services (tests inject a clock this way).
        extra_route_handlers: More routes; one with the path and method of a built-in
            route replaces it (tests mount stand-ins this way).

    Returns:
        The Litestar app. Background jobs (event poller, recorder, settlement) run during
        its lifespan.

    Raises:
        ConfigurationError: Inconsistent settings.
    """
    settings = settings or GatewaySettings.from_env()
    settings.dev_account_list()  # refuses dev accounts on a gateway that is not local
    services = services or build_services(settings)
    inference = Inference(settings, services.state, services.chain, services.metrics.registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if isinstance(services.state, MemoryState):
            await services.state.seed_outstanding(await services.queue.unrecorded_totals())
        if services.chain is not None:
            tasks.append(
                asyncio.create_task(services.chain.follow_events(settings.event_poll_interval_s))
            )
        if services.recorder is None and services.chain is not None:
            services.recorder = _maybe_recorder(services)
        if services.recorder is not None and settings.recorder_enabled:
            tasks.append(
                asyncio.create_task(services.recorder.run_forever(settings.recorder_interval_s))
            )
            if settings.settle_interval_s > 0:
                tasks.append(asyncio.create_task(services.recorder.settle_forever()))
        await inference.start()
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
            await inference.stop()
            await services.queue.close()
            await services.state.close()
            if services.chain is not None:
                await services.chain.close()

    app = Litestar(
        route_handlers=_merge_routes(ROUTES, extra_route_handlers or []),
        exception_handlers={Exception: problem_response, HTTPException: problem_response},
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="2PM gateway", version="0.1.0", path="/schema", components=COMPONENTS
        ),
        middleware=[lambda app: MetricsMiddleware(app, services.metrics)],
        cors_config=CORSConfig(allow_origins=[settings.origin], allow_credentials=True),
        request_max_body_size=8 * 1024 * 1024,
    )
    app.state.services = services
    app.state.inference = inference
    return app


def _merge_routes(built_in: list[Any], extra: list[Any]) -> list[Any]:
    """Built-in routes plus ``extra``; an extra route replaces a built-in one it overlaps."""
    taken = {
        (path, method)
        for handler in extra
        for path in getattr(handler, "paths", ())
        for method in getattr(handler, "http_methods", ())
    }
    kept = [
        handler
        for handler in built_in
        if not any(
            (path, method) in taken
            for path in getattr(handler, "paths", ())
            for method in getattr(handler, "http_methods", ())
        )
    ]
    return [*kept, *extra]


def _maybe_recorder(services: Services) -> Any:
    """The recorder when the signer is configured, else None (receipts stay queued)."""
    s = services.settings
    if not (s.signer_url and s.signer_secret):
        _log.warning("no signer configured: receipts are queued but not recorded")
        return None
    try:
        from gateway._recorder import Recorder
    except ImportError as exc:  # the signer's client library is missing
        raise ConfigurationError(f"recorder unavailable: {exc}") from exc
    return Recorder.from_services(services)
