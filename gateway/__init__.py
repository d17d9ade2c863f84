"""The 2PM gateway: SIWE sign-in, API keys, stake gate, credit, receipts on chain.

The public surface is :data:`__all__`; a test pins it.
"""

from gateway._auth import ApiKey, Caller
from gateway._billing import Billing, Charge, content_hash
from gateway._errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    Forbidden,
    GatewayError,
    InsufficientStake,
    NotAuthenticated,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServiceUnavailable,
    SignInRejected,
    UpstreamError,
)
from gateway._receipts import Receipt
from gateway._settings import GatewaySettings, RateTier
from gateway.app import Services, create_app

__all__ = [
    "ApiKey",
    "BadRequest",
    "Billing",
    "Caller",
    "Charge",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "GatewaySettings",
    "InsufficientStake",
    "NotAuthenticated",
    "NotFound",
    "PaymentRequired",
    "RateLimited",
    "RateTier",
    "Receipt",
    "ServiceUnavailable",
    "Services",
    "SignInRejected",
    "UpstreamError",
    "content_hash",
    "create_app",
]
