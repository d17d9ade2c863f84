"""Errors of the signer, drawn as one tree.

::

    SignerError                      every error this package raises on purpose
    ├── ConfigError                  bad settings, keystore, policy or callers file (not HTTP)
    ├── ServiceError                 a refusal the service renders as RFC 9457 problem+json
    │   ├── MalformedRequest         400  the body is not what the route accepts
    │   ├── NotAuthenticated         401  missing, bad, stale or replayed caller signature
    │   ├── PolicyViolation          403  the policy does not allow this signature
    │   ├── IdempotencyConflict      409  the key was used before with another body
    │   ├── NonceConflict            409  a nonce move the service does not make
    │   ├── PayloadTooLarge          413  the body is over the size limit
    │   └── RateLimited              429  a rolling-window cap is reached
    └── ClientError                  raised by the caller library (signer.client)
        ├── SignerUnavailable        the signer could not be reached or answered 5xx
        └── SignerRefused            the signer answered 4xx; carries status and reason

``contracts.Transactor`` (signing here through :class:`~signer.client.RemoteSigner`) raises the
transaction errors of :mod:`core.transactions` (re-exported by ``signer``), whoever signs::

    TransactionFailed                broadcast, mining or receipt wait failed
    ├── WouldRevert                  gas estimation says the call reverts (``data``: bytes)
    └── TransactionReverted          mined with status 0

Every :class:`ServiceError` carries an HTTP ``status`` (a class attribute, as Litestar's
exceptions do) and a machine-readable ``reason`` from :data:`REASONS`; the caller library turns a
problem body back into :class:`SignerRefused` with the same ``reason``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.protocol import problem_type

#: Every ``reason`` the service may put in a problem body, with its meaning. Stable: callers and
#: audit tooling match on these strings.
REASONS: dict[str, str] = {
    "malformed_body": "the body is not valid JSON of the route's shape",
    "malformed_calldata": "the calldata does not decode with the allowed function's argument types",
    "unsupported_transaction": "only EIP-1559 calls to a contract are signed (no creation, no "
    "access list, no blob)",
    "bad_auth": "caller signature headers are missing or the signature does not match",
    "unknown_caller": "the caller id is not in the callers file",
    "stale_timestamp": "the request timestamp is outside the allowed clock skew",
    "replayed_request": "this caller nonce was already used",
    "wrong_chain": "the chain id is not the policy's chain id",
    "unknown_contract": "the destination is not an allowed contract",
    "unknown_function": "the 4-byte selector is not an allowed function of that contract",
    "value_over_cap": "the value is over the per-transaction cap",
    "window_value_over_cap": "the value would take the rolling window over its cap",
    "gas_over_cap": "the gas limit is over the cap",
    "fee_over_cap": "max fee per gas (or the priority fee) is over the cap",
    "replacement_underpriced": "a replacement's fees are not both at least 10 % above the replaced one's",
    "total_fee_over_cap": "gas x max fee per gas plus the L1 data fee bound is over the [l1_fee] cap",
    "caller_not_allowed": "the policy allows it, but not for this caller (its allow-list)",
    "typed_data_domain_not_allowed": "the EIP-712 domain is not an allowed domain",
    "typed_data_type_not_allowed": "the EIP-712 primary type is not allowed for that domain",
    "idempotency_conflict": "the idempotency key was used before with a different body",
    "nonce_lower_refused": "the nonce is never lowered over the API",
    "body_too_large": "the body is over the size limit",
    "rate_limited": "the transactions-per-hour (or typed-data-per-hour) cap is reached",
    "replay_cache_full": "too many requests inside the clock-skew window",
    "not_found": "no such route or record",
}


class SignerError(Exception):
    """Base of every error raised on purpose by the signer package."""


class ConfigError(SignerError):
    """A settings value, keystore, policy or callers file is missing or invalid."""


class ServiceError(SignerError):
    """A refusal rendered by the service as an RFC 9457 problem.

    Args:
        reason: One of the keys of :data:`REASONS`.
        detail: A human-readable sentence for this occurrence; never contains key material.
        extra: More members for the problem body (for example ``{"nonce": 7}``).
    """

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body of this error.

        Returns:
            A dict with ``type``, ``title``, ``status``, ``detail``, ``reason`` and any extras.
        """
        return {
            "type": problem_type(f"signer/{self.reason}"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "reason": self.reason,
            **self.extra,
        }


class MalformedRequest(ServiceError):
    """400: the body is not what the route accepts."""

    status = 400
    title = "Bad Request"


class NotAuthenticated(ServiceError):
    """401: the caller signature is missing, wrong, stale or replayed."""

    status = 401
    title = "Unauthorized"


class PolicyViolation(ServiceError):
    """403: the policy does not allow the requested signature."""

    status = 403
    title = "Forbidden by policy"


class IdempotencyConflict(ServiceError):
    """409: the idempotency key was used before with a different body."""

    status = 409
    title = "Conflict"


class NonceConflict(ServiceError):
    """409: the nonce change asked for is one the API never makes (lowering)."""

    status = 409
    title = "Conflict"


class NotFound(ServiceError):
    """404: no such route or record."""

    status = 404
    title = "Not Found"


class PayloadTooLarge(ServiceError):
    """413: the body is over the configured size limit."""

    status = 413
    title = "Content Too Large"


class RateLimited(ServiceError):
    """429: a rolling-window cap is reached; retry later."""

    status = 429
    title = "Too Many Requests"


class ClientError(SignerError):
    """Base of the errors raised by the caller library :mod:`signer.client`."""


class SignerUnavailable(ClientError):
    """The signer could not be reached, timed out, or answered with a 5xx status."""


class SignerRefused(ClientError):
    """The signer refused the request with a 4xx problem.

    Args:
        status: The HTTP status.
        reason: The problem's ``reason`` (a key of :data:`REASONS`, or ``"unknown"``).
        detail: The problem's ``detail``.
        problem: The whole problem body.
    """

    def __init__(self, status: int, reason: str, detail: str, problem: dict[str, Any]) -> None:
        super().__init__(f"signer refused ({status} {reason}): {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail
        self.problem = problem
