"""The Litestar app around :class:`signer._service.SignerService`.

Handlers read the raw body themselves (the HMAC covers the exact bytes), hand the request to
the service in a worker thread (signing and fsync block), and render its answer. Every error,
the framework's own included, is an RFC 9457 ``application/problem+json`` body; a 500 never
shows its detail.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from core.protocol import PROBLEM_MEDIA_TYPE, problem_type
from signer._service import SignerService

_log = logging.getLogger("signer")


def build_app(service: SignerService, *, max_body_bytes: int) -> Litestar:
    """Build the HTTP app.

    Args:
        service: The request handling.
        max_body_bytes: Body size limit in bytes (larger bodies get 413).

    Returns:
        The Litestar app. Routes: ``GET /healthz``, ``GET /v1/address``, ``GET /v1/policy``,
        ``GET /v1/nonce``, ``POST /v1/nonce/sync``, ``POST /v1/sign/transaction``,
        ``POST /v1/sign/typed-data``, ``POST /v1/sign/replacement``, ``GET /v1/records/{key}``,
        ``GET /v1/audit`` (the newest audit entries, for the operator's dashboard).
    """

    async def run(
        request: Request[Any, Any, Any], event: str, path_param: str | None = None
    ) -> Response[Any]:
        too_large = False
        try:
            body = await request.body()
        except RequestEntityTooLarge:
            body, too_large = b"", True
        status, content = await anyio.to_thread.run_sync(
            lambda: service.handle(
                event,
                request.method,
                request.url.path,
                request.headers,
                body,
                body_too_large=too_large,
                path_param=path_param,
            )
        )
        media = "application/json" if status < 400 else PROBLEM_MEDIA_TYPE
        return Response(content, status_code=status, media_type=media)

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "address": service.address, "policy_digest": service.policy.digest}

    @get("/v1/address")
    async def address(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "address")

    @get("/v1/policy")
    async def policy(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "policy")

    @get("/v1/nonce")
    async def nonce(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "nonce")

    @post("/v1/nonce/sync", status_code=200)
    async def nonce_sync(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "nonce_sync")

    @post("/v1/sign/transaction", status_code=200)
    async def sign_transaction(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "sign_transaction")

    @post("/v1/sign/typed-data", status_code=200)
    async def sign_typed_data(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "sign_typed_data")

    @post("/v1/sign/replacement", status_code=200)
    async def replace_transaction(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "replace_transaction")

    @get("/v1/records/{key:str}")
    async def record(request: Request[Any, Any, Any], key: str) -> Response[Any]:
        return await run(request, "record", path_param=key)

    @get("/v1/audit")
    async def audit(request: Request[Any, Any, Any]) -> Response[Any]:
        return await run(request, "audit")

    return Litestar(
        route_handlers=[
            audit,
            healthz,
            address,
            policy,
            nonce,
            nonce_sync,
            sign_transaction,
            sign_typed_data,
            replace_transaction,
            record,
        ],
        request_max_body_size=max_body_bytes,
        exception_handlers={HTTPException: _http_problem, Exception: _internal_problem},
        openapi_config=None,
    )


def _http_problem(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    reason = {404: "not_found", 413: "body_too_large"}.get(status, "malformed_body")
    if status >= 500:
        return _internal_problem(_, exc)
    return Response(
        {
            "type": problem_type(f"signer/{reason}"),
            "title": exc.detail if isinstance(exc.detail, str) else "Error",
            "status": status,
            "detail": exc.detail,
            "reason": reason,
        },
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers,
    )


def _internal_problem(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.error("internal error", exc_info=exc)
    return Response(
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "internal error",
            "reason": "internal",
        },
        status_code=500,
        media_type=PROBLEM_MEDIA_TYPE,
    )
