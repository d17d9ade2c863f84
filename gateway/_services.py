"""What every handler needs: the wired services, the caller of a request, a paid response.

The app and the inference routes both import this module (neither imports the other for it).
Paid routes (``predict``, ``infer``, ``noop``) resolve their caller with
:func:`paying_caller_of` inside the handler and answer with :func:`paid_response`, a
pre-encoded :class:`~litestar.response.base.ASGIResponse`: Litestar's dependency injection
and its ``Response`` conversion cost about 20 µs a request here, a tenth of the
billed path (``bench/gateway``). Other routes keep dependency injection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.response.base import ASGIResponse

from core.protocol import MODEL_VERSION_HEADER, RECEIPT_HEADER, SESSION_COOKIE
from gateway._auth import Auth, Caller
from gateway._billing import Billing
from gateway._chain import ChainReader
from gateway._errors import ConfigurationError, Forbidden, NotAuthenticated, ServiceUnavailable
from gateway._metrics import Metrics
from gateway._openapi import PAID_RESPONSES, problem_spec
from gateway._receipts import ReceiptQueue, RedisReceiptQueue, SqliteReceiptQueue
from gateway._restaking import RestakingReader
from gateway._settings import GatewaySettings
from gateway._sqlite_store import SqliteStore
from gateway._state import MemoryState, RedisState, State

__all__ = [
    "MODEL_VERSION_HEADER",
    "PAID_RESPONSES",
    "RECEIPT_HEADER",
    "Services",
    "build_services",
    "caller_of",
    "paid_response",
    "paying_caller_of",
    "problem_spec",
    "services_of",
    "session_caller_of",
]


@dataclass
class Services:
    """Everything the handlers use; one per app, kept in ``app.state.services``.

    Attributes:
        settings: Settings.
        state: Shared state.
        auth: SIWE, sessions, keys.
        metrics: Prometheus metrics.
        queue: Receipt queue.
        chain: Chain reader (None without ``rpc_url``).
        billing: Billing guard (None without a chain).
        recorder: Background recorder, if running.
        now_s: Clock.
    """

    settings: GatewaySettings
    state: State
    auth: Auth
    metrics: Metrics
    queue: ReceiptQueue
    chain: ChainReader | None
    billing: Billing | None
    recorder: Any = None
    now_s: Callable[[], float] = time.time

    def need_billing(self) -> Billing:
        """The billing guard, or 503 when the gateway runs without a chain.

        Returns:
            The billing guard.

        Raises:
            ServiceUnavailable: No chain configured.
        """
        if self.billing is None:
            raise ServiceUnavailable("this gateway has no chain connection configured")
        return self.billing


def build_services(
    settings: GatewaySettings,
    *,
    now_s: Callable[[], float] = time.time,
    chain: ChainReader | None = None,
) -> Services:
    """Wire the services from settings (memory or Redis state, SQLite or Redis queue).

    Args:
        settings: Settings.
        now_s: Clock (injectable for tests).
        chain: A chain reader to use instead of one built from ``rpc_url``.

    Returns:
        The services.

    Raises:
        ConfigurationError: Inconsistent settings.
    """
    metrics = Metrics()
    state: State
    queue: ReceiptQueue
    if settings.redis_url:
        rstate = RedisState.from_url(settings.redis_url, settings.redis_namespace)
        state = rstate
        queue = RedisReceiptQueue(
            rstate.redis,
            settings.redis_namespace,
            max_pending=settings.queue_max_pending,
            pipe=rstate.pipe,
        )
    else:
        # The queue first: it takes the file's lock (one process), then the records share it.
        sqlite_queue = SqliteReceiptQueue(
            settings.queue_path, max_pending=settings.queue_max_pending
        )
        queue = sqlite_queue
        state = MemoryState(
            bucket_max_entries=settings.rate_bucket_max_entries,
            store=SqliteStore(sqlite_queue.connection, max_entries=settings.store_max_entries),
        )
    if chain is None and settings.rpc_url:
        chain = ChainReader.connect(
            settings.rpc_url,
            settings.contract_addresses(),
            metrics,
            cache_ttl_s=settings.stake_cache_ttl_s,
            cache_max_entries=settings.cache_max_entries,
            head_max_age_s=settings.event_poll_interval_s,
        )
        try:
            chain.restaking = RestakingReader.from_settings(settings)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
    billing = None
    auth = Auth(settings, state, now_s=now_s)
    if chain is not None:
        billing = Billing(
            state,
            chain,
            queue,
            metrics,
            settings.tiers,
            now_s=now_s,
            on_credential_gone=auth.forget,
        )
    return Services(settings, state, auth, metrics, queue, chain, billing, now_s=now_s)


# ---------------------------------------------------------------------------- per request


def services_of(request: Request[Any, Any, Any]) -> Services:
    """The app's services.

    Args:
        request: Any request to the gateway app.

    Returns:
        ``request.app.state.services``.
    """
    services: Services = request.app.state.services
    return services


def _bearer(request: Request[Any, Any, Any]) -> str | None:
    """The ``Authorization: Bearer`` token, None without the header.

    Raises:
        NotAuthenticated: The header is there but not ``Bearer <token>`` (RFC 6750 §2.1).
    """
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization must be 'Bearer <API key>'")
    return token.strip()


async def caller_of(request: Request[Any, Any, Any]) -> Caller:
    """Authenticate by ``Authorization: Bearer <key>`` or else the session cookie.

    Reads the session or key from the store on every call (routes that are not paid).

    Args:
        request: The request.

    Returns:
        The caller.

    Raises:
        NotAuthenticated: No credential, or an unknown, expired or revoked one (401).
    """
    auth = services_of(request).auth
    bearer = _bearer(request)
    if bearer is not None:
        return await auth.caller_from_key(bearer)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated("sign in with Ethereum or send an API key")
    address = await auth.session_address(cookie)
    if address is None:
        raise NotAuthenticated("the session has ended; sign in again")
    return Caller(address=address, via="session")


async def paying_caller_of(request: Request[Any, Any, Any]) -> Caller:
    """:func:`caller_of` for paid routes: may come from a cache that billing re-checks.

    Args:
        request: The request.

    Returns:
        The caller, with :attr:`Caller.credential` set (see :meth:`Auth.paying_caller`).

    Raises:
        NotAuthenticated: No credential, or an unknown, expired or revoked one (401).
    """
    auth = services_of(request).auth
    bearer = _bearer(request)
    if bearer is not None:  # the key wins; the cookies need not be parsed
        return await auth.paying_caller(bearer=bearer, session_token=None)
    return await auth.paying_caller(bearer=None, session_token=request.cookies.get(SESSION_COOKIE))


async def session_caller_of(request: Request[Any, Any, Any]) -> Caller:
    """:func:`caller_of`, refusing API keys (key management needs a signed-in session).

    Args:
        request: The request.

    Returns:
        The caller, signed in with SIWE.

    Raises:
        NotAuthenticated: As :func:`caller_of`.
        Forbidden: The request came with an API key (403).
    """
    caller = await caller_of(request)
    if caller.via != "session":
        raise Forbidden("API keys are managed from a signed-in session, not with a key")
    return caller


def paid_response(
    body: bytes, *, media_type: str, receipt_id: str, model_version: int | None = None
) -> ASGIResponse:
    """The 200 answer of a paid route, its body already encoded.

    Args:
        body: Response bytes (the ones hashed into the receipt).
        media_type: ``Content-Type``.
        receipt_id: 0x-hex receipt id, sent as ``X-Receipt-Id``.
        model_version: Model version that answered, sent as ``X-Model-Version``.

    Returns:
        An ASGI response Litestar sends as it is.
    """
    headers = [(RECEIPT_HEADER, receipt_id)]
    if model_version is not None:
        headers.append((MODEL_VERSION_HEADER, str(model_version)))
    return ASGIResponse(body=body, media_type=media_type, headers=headers)
