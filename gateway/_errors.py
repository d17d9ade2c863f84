"""The gateway's errors and the one function that renders them as RFC 9457 problems.

Every error the gateway renders, wherever it is defined (name, status, problem ``type``
slug after ``https://2pm.dev/problems/``; ``tests/gateway/test_gateway_errors.py`` checks this
drawing against the classes, and that the SDK maps every slug)::

    GatewayError                        500  internal            (detail hidden)
    ├── ConfigurationError              ---  configuration       startup only, never rendered
    ├── BadRequest                      400  bad-request
    │   └── EncryptedFrameMalformed     400  he-malformed        gateway.he
    ├── NotAuthenticated                401  not-authenticated
    │   └── SignInRejected              401  sign-in-rejected    (``reason``)
    ├── PaymentRequired                 402  payment-required    (``missing_wei``)
    ├── Forbidden                       403  forbidden
    │   └── InsufficientStake           403  insufficient-stake  (required and actual stake)
    ├── NotFound                        404  not-found
    │   └── PublicContextNotFound       404  he-context-not-found  gateway.he
    ├── Conflict                        409  conflict
    ├── TooManyRows                     413  too-many-rows       gateway._rows
    ├── EncryptedPayloadTooLarge        413  he-too-large        gateway.he
    ├── InvalidRows                     422  invalid-rows        gateway._rows
    ├── EncryptedInputRejected          422  he-rejected         gateway.he
    │   ├── PublicContextRejected       422  he-context-rejected  gateway.he
    │   └── SealVersionNotSupported     422  he-seal-version     gateway.he (``supported_seal_versions``)
    ├── ProofUnsupported                422  proof-unsupported   gateway._proofs
    ├── RateLimited                     429  rate-limited        (Retry-After)
    ├── UpstreamError                   502  upstream            (signer or chain answered badly)
    └── ServiceUnavailable              503  unavailable         (queue full, chain unreachable)
        ├── ModelUnavailable            503  model-unavailable   gateway._models
        ├── Overloaded                  503  he-overloaded       gateway.he (Retry-After)
        ├── WorkerFailed                503  he-worker-failed    gateway.he
        └── ProverOverloaded            503  prover-busy         gateway._proofs (Retry-After)

Litestar's own refusals (a path that matches no route, a wrong method, a body over the
size limit, a body that does not decode) are rendered as problems too, with the slug of
their status (``not-found``, ``method-not-allowed``, ``request-entity-too-large``,
``bad-request``).

A sign-in refusal says why in its ``reason`` extension member, one of
:data:`SIGN_IN_REASONS`, so a client can act on it (ask for a new nonce, fix its clock,
switch chain) without reading the English ``detail``.

Foreign errors (web3, redis, httpx, siwe) are translated where they are caught, with
``raise ... from exc``; anything that still escapes becomes a 500 whose detail is hidden.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

from litestar import Request, Response
from litestar.exceptions import HTTPException

from core.protocol import INSUFFICIENT_STAKE, PROBLEM_MEDIA_TYPE, problem_type

__all__ = [
    "SIGN_IN_REASONS",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InsufficientStake",
    "NotAuthenticated",
    "NotFound",
    "PaymentRequired",
    "RateLimited",
    "ServiceUnavailable",
    "SignInRejected",
    "UpstreamError",
    "problem_response",
]


_log = logging.getLogger("gateway")


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    Attributes:
        status_code: HTTP status of the problem response.
        title: Short, fixed summary of the problem type.
        slug: Last part of the problem ``type`` URI.
        extra: Extension members added to the problem body.
        headers: Extra response headers.
    """

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    slug: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


class ConfigurationError(GatewayError):
    """The settings are inconsistent or incomplete (raised at startup)."""

    title = "Gateway misconfigured"
    slug = "configuration"


class BadRequest(GatewayError):
    """The request is malformed."""

    status_code = 400
    title = "Bad request"
    slug = "bad-request"


class NotAuthenticated(GatewayError):
    """No valid session or API key came with the request."""

    status_code = 401
    title = "Not authenticated"
    slug = "not-authenticated"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="2pm"'})
        super().__init__(detail, **kwargs)


SIGN_IN_REASONS: dict[str, str] = {
    "domain-mismatch": "the message's domain is not the gateway's",
    "scheme-mismatch": "the message's scheme is not the gateway's public URL scheme",
    "uri-mismatch": "the message's URI is not on the gateway's origin",
    "chain-id-mismatch": "the message's chain id is not the gateway's chain",
    "issued-in-future": "Issued At lies in the future beyond the allowed clock skew",
    "too-old": "Issued At is older than the gateway accepts; ask for a new nonce",
    "expired": "Expiration Time has passed",
    "not-yet-valid": "Not Before has not come yet",
    "bad-signature": "the signature is not the address's (EOA recovery or EIP-1271)",
    "verification-failed": "the SIWE library refused the message for another reason",
    "signature-unverifiable": "the EIP-1271 check could not reach the chain",
    "nonce-unknown": "the nonce was never issued by this gateway, or its TTL ran out",
    "nonce-reused": "the nonce was already used by a successful sign-in",
}
"""Values of a :class:`SignInRejected` problem's ``reason`` member, and what each means
(the checks of EIP-4361's verification section, in the order the gateway runs them)."""


class SignInRejected(NotAuthenticated):
    """A SIWE message or its signature was refused.

    Attributes:
        reason: Why, one of :data:`SIGN_IN_REASONS`; also the problem's ``reason`` member.
    """

    title = "Sign-in rejected"
    slug = "sign-in-rejected"

    def __init__(self, detail: str, *, reason: str, **kwargs: Any) -> None:
        if reason not in SIGN_IN_REASONS:
            raise ValueError(f"unknown sign-in refusal reason {reason!r}")
        kwargs.setdefault("extra", {"reason": reason})
        super().__init__(detail, **kwargs)
        self.reason = reason


class PaymentRequired(GatewayError):
    """Credit or the signed spending cap does not cover the price."""

    status_code = 402
    title = "Payment required"
    slug = "payment-required"


class Forbidden(GatewayError):
    """The caller is known but may not do this."""

    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class InsufficientStake(Forbidden):
    """Active stake is below the subnet's minimum."""

    title = "Insufficient stake"
    slug = INSUFFICIENT_STAKE


class NotFound(GatewayError):
    """The resource does not exist."""

    status_code = 404
    title = "Not found"
    slug = "not-found"


class Conflict(GatewayError):
    """The request conflicts with the current state."""

    status_code = 409
    title = "Conflict"
    slug = "conflict"


class RateLimited(GatewayError):
    """The caller's token bucket is empty."""

    status_code = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after_s: float, **kwargs: Any) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        kwargs.setdefault("headers", {"Retry-After": str(seconds)})
        kwargs.setdefault("extra", {"retry_after_s": seconds})
        super().__init__(detail, **kwargs)


class UpstreamError(GatewayError):
    """The signer or the chain answered with an error."""

    status_code = 502
    title = "Upstream error"
    slug = "upstream"


class ServiceUnavailable(GatewayError):
    """A dependency is down or a bound is reached; retry later."""

    status_code = 503
    title = "Service unavailable"
    slug = "unavailable"


def _render(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    slug: str,
    detail: str | None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Render any exception as an RFC 9457 problem; the detail of 500s is hidden.

    Args:
        request: The request that failed.
        exc: What was raised.

    Returns:
        An ``application/problem+json`` response.
    """
    if isinstance(exc, GatewayError):
        if exc.status_code >= 500 and exc.status_code != 503 and exc.status_code != 502:
            _log.error("internal error on %s", request.url.path, exc_info=exc)
            return _render(request, 500, GatewayError.title, GatewayError.slug, None)
        return _render(
            request, exc.status_code, exc.title, exc.slug, exc.detail, dict(exc.extra), exc.headers
        )
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        members: dict[str, Any] = {}
        if isinstance(exc.extra, dict):
            members = dict(exc.extra)
        elif exc.extra:
            members = {"errors": exc.extra}
        title = {
            400: "Bad request",
            401: "Not authenticated",
            404: "Not found",
            405: "Method not allowed",
            413: "Request entity too large",
        }.get(exc.status_code, "Client error")
        slug = title.lower().replace(" ", "-")
        return _render(
            request, exc.status_code, title, slug, exc.detail, members, dict(exc.headers or {})
        )
    _log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return _render(request, 500, GatewayError.title, GatewayError.slug, None)
