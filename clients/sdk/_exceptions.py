"""The SDK's errors, and the one boundary that translates the gateway's problems into them.

The tree::

    TwoPMError
    ├── ApiError                      the gateway answered with an RFC 9457 problem
    │   ├── BadRequest                400, 409, 413, 422 and any other 4xx not below
    │   ├── AuthError                 401: no session or API key
    │   │   └── SignInRejected        401: sign-in refused; ``reason`` says why
    │   ├── PaymentRequired           402: credit or the signed spending cap is short
    │   ├── ForbiddenError            403
    │   │   └── InsufficientStake     403: active stake below the subnet's minimum
    │   ├── NotFound                  404
    │   ├── RateLimited               429: ``retry_after_s``
    │   ├── Overloaded                503: ``retry_after_s`` (busy, queue full, chain down)
    │   └── ServerError               500, 502, 504 ... and answers that are not problems
    ├── TransportError                no answer: connection refused, timeout, protocol error
    ├── ChainError                    a JSON-RPC call failed
    │   └── TransactionReverted       a transaction reverted (custom error name and arguments)
    │       ├── TooEarly              a cooldown or delay is still running: ``ready_at``, ``seconds_left``
    │       └── NothingToWithdraw     no pending withdrawal, or no payout to claim
    ├── WalletError                   a key or keystore could not be loaded or used
    └── InvalidInput                  the caller's own arguments are wrong (nothing was sent)

The class comes from the problem's ``type`` (:data:`PROBLEM_TYPES`, one entry for every
problem the gateway renders; a gateway test checks that none is missing), else from the
status.

Foreign errors (httpx, web3, eth-account, the CKKS codec) are translated where they are
caught, with ``raise ... from exc``; a test checks that no httpx exception escapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

from core.protocol import HE_CONTEXT_NOT_FOUND, INSUFFICIENT_STAKE, PROBLEM_TYPE_BASE

__all__ = [
    "PROBLEM_TYPES",
    "ApiError",
    "AuthError",
    "BadRequest",
    "ChainError",
    "ForbiddenError",
    "InsufficientStake",
    "InvalidInput",
    "NotFound",
    "NothingToWithdraw",
    "Overloaded",
    "PaymentRequired",
    "RateLimited",
    "ServerError",
    "SignInRejected",
    "TooEarly",
    "TransactionReverted",
    "TransportError",
    "TwoPMError",
    "WalletError",
    "error_from_response",
    "translate_transport_error",
]

_DETAIL_MAX_CHARS = 300
"""Longest slice of a non-problem error body quoted in a message."""


class TwoPMError(Exception):
    """Base of every error the SDK raises."""


class ApiError(TwoPMError):
    """The gateway refused the request with an RFC 9457 problem (or an unreadable error).

    Attributes:
        status_code: HTTP status.
        title: The problem's ``title``.
        detail: The problem's ``detail`` (one line, may be empty).
        problem_type: The problem's ``type`` URI.
        problem: The whole problem body (extension members included).
    """

    status_code: int = 0

    def __init__(
        self,
        status_code: int,
        title: str,
        detail: str = "",
        *,
        problem_type: str = "about:blank",
        problem: dict[str, Any] | None = None,
    ) -> None:
        message = f"{status_code} {title}" + (f": {detail}" if detail else "")
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        self.problem = dict(problem or {})


class BadRequest(ApiError):
    """The request is malformed or conflicts with the gateway's state (4xx)."""


class AuthError(ApiError):
    """No valid session or API key came with the request, or the sign-in was refused (401)."""


class SignInRejected(AuthError):
    """The gateway refused a signed SIWE message (401).

    Attributes:
        reason: Why, machine-readable (the problem's ``reason``), e.g. ``"nonce-reused"``,
            ``"expired"``, ``"domain-mismatch"``, ``"chain-id-mismatch"``, ``"bad-signature"``;
            the gateway's ``gateway._errors.SIGN_IN_REASONS`` lists them all. None if absent.
    """

    @property
    def reason(self) -> str | None:
        """The refusal's machine-readable reason, or None."""
        value = self.problem.get("reason")
        return value if isinstance(value, str) else None


class PaymentRequired(ApiError):
    """Credit or the signed spending cap does not cover the price (402).

    Attributes:
        missing_wei: Wei short (from the problem's ``missing_wei``), or None.
    """

    @property
    def missing_wei(self) -> int | None:
        """Wei missing to pay for the request, as the gateway computed it."""
        return _int_member(self.problem, "missing_wei")


class ForbiddenError(ApiError):
    """The caller is known but may not do this (403)."""


class InsufficientStake(ForbiddenError):
    """Active stake is below the subnet's minimum (403)."""

    @property
    def required_stake_wei(self) -> int | None:
        """The subnet's minimum stake, wei of ETH."""
        return _int_member(self.problem, "required_stake_wei")

    @property
    def actual_stake_wei(self) -> int | None:
        """The caller's active stake, wei of ETH."""
        return _int_member(self.problem, "actual_stake_wei")


class NotFound(ApiError):
    """The resource does not exist, or is not the caller's (404)."""


class RateLimited(ApiError):
    """The caller's rate tier is exhausted (429).

    Attributes:
        retry_after_s: Seconds to wait before retrying (from ``Retry-After``).
    """

    def __init__(self, *args: Any, retry_after_s: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s


class Overloaded(ApiError):
    """The gateway is busy or a dependency is down; retry later (503).

    Attributes:
        retry_after_s: Seconds to wait before retrying (``Retry-After``, else 1).
    """

    def __init__(self, *args: Any, retry_after_s: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s


class ServerError(ApiError):
    """The gateway failed (5xx other than 503), or answered with something unreadable."""


class TransportError(TwoPMError):
    """No usable answer: the connection failed, timed out, or broke the HTTP protocol."""


class ChainError(TwoPMError):
    """A JSON-RPC call to the chain failed (unreachable node, rejected transaction)."""


class TransactionReverted(ChainError):
    """A transaction (or its simulation) reverted.

    Attributes:
        error_name: Solidity custom error, e.g. ``"StakingVaultCooldownActive"``, or
            None when the revert carried no known error.
        arguments: The custom error's decoded arguments, in declaration order.
    """

    def __init__(
        self, message: str, error_name: str | None = None, arguments: tuple[Any, ...] = ()
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.arguments = arguments


def time_left(seconds: int) -> str:
    """A wait as a person reads it: ``"2 h 13 min"``, ``"9 min 5 s"``, ``"40 s"``, ``"3 d 4 h"``.

    Args:
        seconds: The wait, in seconds (negative counts as 0).

    Returns:
        The two largest units, rounded down; a second unit of 0 is left out (``"1 h"``).
    """
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next((i for i, (n, _) in enumerate(units) if n), len(units) - 1)
    largest, second = units[first], units[first + 1 : first + 2]
    shown = [largest, *(u for u in second if u[0])]
    return " ".join(f"{n} {unit}" for n, unit in shown)


def utc_time(unix_s: int) -> str:
    """A Unix time as ``"2026-12-06 17:02 UTC"``.

    Args:
        unix_s: Seconds since the Unix epoch.

    Returns:
        The minute it falls in, in UTC.
    """
    import datetime

    when = datetime.datetime.fromtimestamp(unix_s, tz=datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


class TooEarly(TransactionReverted):
    """A withdrawal's cooldown or delay has not passed yet.

    Raised for ``StakingVaultCooldownActive`` and ``InferenceLedgerWithdrawalNotReady``.

    The message reads ``"<what> ends in 2 h 13 min (at 2026-12-06 17:02 UTC)"``, measured on
    the chain's clock (the block the call was simulated in), not the local one.

    Attributes:
        ready_at: Unix time (s, chain clock) from which the call succeeds.
        now: The chain's time (s) when it was refused.
        seconds_left: ``ready_at - now``.
    """

    def __init__(
        self,
        message: str,
        error_name: str | None = None,
        arguments: tuple[Any, ...] = (),
        *,
        ready_at: int,
        now: int,
    ) -> None:
        super().__init__(message, error_name, arguments)
        self.ready_at = ready_at
        self.now = now
        self.seconds_left = max(0, ready_at - now)


class NothingToWithdraw(TransactionReverted):
    """Nothing is there to take: no pending withdrawal request, or no payout to claim.

    Raised for ``StakingVaultAlreadyWithdrawn``, ``InferenceLedgerNoPendingWithdrawal``,
    ``InferenceLedgerNothingToClaim``, and by ``ChainClient.complete_withdrawals`` when it
    finds no pending request.
    """


class WalletError(TwoPMError):
    """A private key or keystore could not be loaded (wrong password, bad file) or used."""


class InvalidInput(TwoPMError, ValueError):
    """The caller's arguments are wrong; nothing was sent."""


def _int_member(problem: dict[str, Any], name: str) -> int | None:
    value = problem.get(name)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _retry_after_s(response: httpx.Response, problem: dict[str, Any]) -> float:
    """Seconds from ``Retry-After`` (delta-seconds form), else the problem member, else 1."""
    for raw in (response.headers.get("retry-after"), problem.get("retry_after_s")):
        try:
            value = float(raw) if raw is not None else math.nan
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return 1.0


def _problem_of(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    402: PaymentRequired,
    403: ForbiddenError,
    404: NotFound,
    429: RateLimited,
    503: Overloaded,
}


PROBLEM_TYPES: dict[str, type[ApiError]] = {
    "internal": ServerError,
    "bad-request": BadRequest,
    "he-malformed": BadRequest,
    "not-authenticated": AuthError,
    "sign-in-rejected": SignInRejected,
    "payment-required": PaymentRequired,
    "forbidden": ForbiddenError,
    INSUFFICIENT_STAKE: InsufficientStake,
    "not-found": NotFound,
    HE_CONTEXT_NOT_FOUND: NotFound,
    "method-not-allowed": BadRequest,
    "conflict": BadRequest,
    "too-many-rows": BadRequest,
    "he-too-large": BadRequest,
    "request-entity-too-large": BadRequest,
    "invalid-rows": BadRequest,
    "he-rejected": BadRequest,
    "he-seal-version": BadRequest,
    "he-context-rejected": BadRequest,
    "proof-unsupported": BadRequest,
    "rate-limited": RateLimited,
    "upstream": ServerError,
    "unavailable": Overloaded,
    "model-unavailable": Overloaded,
    "he-overloaded": Overloaded,
    "he-worker-failed": Overloaded,
    "prover-busy": Overloaded,
}
"""The SDK error for each problem slug the gateway renders (the part of ``type`` after
:data:`core.protocol.PROBLEM_TYPE_BASE`)."""


def _status_class(status: int) -> type[ApiError]:
    """The SDK error of a bare status (no problem type, or one the SDK does not know)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return BadRequest if 400 <= status < 500 else ServerError


def error_from_response(response: httpx.Response) -> ApiError:
    """Translate an error response (status >= 400) into the SDK's error for its status.

    Args:
        response: A response whose body has been read.

    Returns:
        The matching :class:`ApiError` subclass (raise it): the class of the problem's
        ``type`` (:data:`PROBLEM_TYPES`) when it fits the status, else the class of the
        status. A body that is not a problem still gives the class of its status, with a
        short excerpt as detail.
    """
    status = response.status_code
    problem = _problem_of(response)
    if problem is None:
        text = response.content[:_DETAIL_MAX_CHARS].decode("utf-8", "replace").strip()
        problem = {}
        title = response.reason_phrase or "HTTP error"
        detail = text
    else:
        title = str(problem.get("title") or response.reason_phrase or "HTTP error")
        detail = str(problem.get("detail") or "")
    problem_type = str(problem.get("type") or "about:blank")
    cls = _status_class(status)
    if problem_type.startswith(PROBLEM_TYPE_BASE):
        mapped = PROBLEM_TYPES.get(problem_type.removeprefix(PROBLEM_TYPE_BASE))
        if mapped is not None and issubclass(mapped, cls):
            cls = mapped
    kwargs: dict[str, Any] = {"problem_type": problem_type, "problem": problem}
    if cls in (RateLimited, Overloaded):
        kwargs["retry_after_s"] = _retry_after_s(response, problem)
    return cls(status, title, detail, **kwargs)


def translate_transport_error(exc: httpx.HTTPError, url: str) -> TransportError:
    """Translate an httpx failure that produced no response.

    Args:
        exc: Any httpx error raised while sending or reading.
        url: The URL asked for (for the message).

    Returns:
        A :class:`TransportError` with a one-line message (raise it ``from exc``).
    """
    if isinstance(exc, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    else:
        what = f"failed ({type(exc).__name__})"
    reason = str(exc).strip()
    return TransportError(f"request to {url} {what}" + (f": {reason}" if reason else ""))
