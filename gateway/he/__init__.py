"""Encrypted inference in the gateway: public-context validation, evaluation kernels, pool.

The gateway calls :meth:`HePool.validate_context` for ``POST /v1/he/contexts`` and
:meth:`HePool.evaluate` for ``POST /v1/subnets/{id}/infer``; both run in worker
processes and raise :class:`gateway._errors.GatewayError` subclasses (400/404/413/422/503).
:class:`HeEvaluator` and :func:`validate_public_context` are the same work in-process.
"""

from gateway.he._context import PublicContextInfo, ServerContext, validate_public_context
from gateway.he._errors import (
    EncryptedFrameMalformed,
    EncryptedInputRejected,
    EncryptedPayloadTooLarge,
    Overloaded,
    PublicContextNotFound,
    PublicContextRejected,
    WorkerFailed,
    translate,
)
from gateway.he._kernels import ContextNotCached, Evaluation, HeEvaluator, LinearModel
from gateway.he._pool import ContextLoader, HePool, HePoolSettings

__all__ = [
    "ContextLoader",
    "ContextNotCached",
    "EncryptedFrameMalformed",
    "EncryptedInputRejected",
    "EncryptedPayloadTooLarge",
    "Evaluation",
    "HeEvaluator",
    "HePool",
    "HePoolSettings",
    "LinearModel",
    "Overloaded",
    "PublicContextInfo",
    "PublicContextNotFound",
    "PublicContextRejected",
    "ServerContext",
    "WorkerFailed",
    "translate",
    "validate_public_context",
]
