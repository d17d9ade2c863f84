"""The encrypted path's errors as gateway problems, and the one translation from the codec.

The tree (all :class:`gateway._errors.GatewayError`)::

    BadRequest                       400
    └── EncryptedFrameMalformed      400  FramingError: bad magic, truncated, trailing bytes
    EncryptedPayloadTooLarge         413  FrameTooLarge, BatchTooLarge (more rows than slots)
    EncryptedInputRejected           422  CiphertextRejected, ShapeMismatch
    ├── SealVersionNotSupported      422  SealVersionUnsupported: SEAL serialization not 4.1/4.3
    └── PublicContextRejected        422  ContextRejected (secret key, parameters, extra keys)
    NotFound                         404
    └── PublicContextNotFound        404  the context id is unknown or expired
    ServiceUnavailable               503
    ├── Overloaded                   503  the worker pool's queue is full (Retry-After)
    └── WorkerFailed                 503  a worker died; the pool was restarted
"""

from __future__ import annotations

import math
from typing import Any

from ckks import (
    SEAL_MINOR_VERSIONS,
    BatchTooLarge,
    CiphertextRejected,
    CkksError,
    ContextRejected,
    FrameTooLarge,
    FramingError,
    SealVersionUnsupported,
    ShapeMismatch,
)
from core.protocol import HE_CONTEXT_NOT_FOUND
from gateway._errors import BadRequest, GatewayError, NotFound, ServiceUnavailable

__all__ = [
    "EncryptedFrameMalformed",
    "EncryptedInputRejected",
    "EncryptedPayloadTooLarge",
    "Overloaded",
    "PublicContextNotFound",
    "PublicContextRejected",
    "SealVersionNotSupported",
    "WorkerFailed",
    "translate",
]


class EncryptedFrameMalformed(BadRequest):
    """An encrypted request or context frame is malformed or truncated."""

    title = "Malformed encrypted frame"
    slug = "he-malformed"


class EncryptedPayloadTooLarge(GatewayError):
    """A frame, a ciphertext, or the batch is larger than allowed."""

    status_code = 413
    title = "Encrypted payload too large"
    slug = "he-too-large"


class EncryptedInputRejected(GatewayError):
    """The ciphertexts do not fit the parameters, context or model."""

    status_code = 422
    title = "Encrypted input rejected"
    slug = "he-rejected"


class PublicContextRejected(EncryptedInputRejected):
    """A public context carries a secret key, other parameters, or unneeded keys."""

    title = "Public context rejected"
    slug = "he-context-rejected"


class SealVersionNotSupported(EncryptedInputRejected):
    """A ciphertext in a SEAL serialization version other than 4.1 (node-seal 7) or 4.3 (TenSEAL)."""

    title = "SEAL serialization version not supported"
    slug = "he-seal-version"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault(
            "extra", {"supported_seal_versions": [f"4.{m}" for m in SEAL_MINOR_VERSIONS]}
        )
        super().__init__(detail, **kwargs)


class PublicContextNotFound(NotFound):
    """The request names a public context that is unknown or has expired; upload it again."""

    title = "Public context not found"
    slug = HE_CONTEXT_NOT_FOUND


class Overloaded(ServiceUnavailable):
    """Every worker is busy and the queue is full; retry after ``retry_after_s``."""

    title = "Encrypted inference overloaded"
    slug = "he-overloaded"

    def __init__(self, detail: str, *, retry_after_s: float, **kwargs: Any) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        kwargs.setdefault("headers", {"Retry-After": str(seconds)})
        kwargs.setdefault("extra", {"retry_after_s": seconds})
        super().__init__(detail, **kwargs)
        self.retry_after_s = seconds


class WorkerFailed(ServiceUnavailable):
    """A worker process died while evaluating; the pool restarts its workers."""

    title = "Encrypted inference worker failed"
    slug = "he-worker-failed"


def translate(exc: CkksError) -> GatewayError:
    """Map a codec error to the gateway problem it is rendered as.

    Args:
        exc: Any :class:`ckks.CkksError`.

    Returns:
        The gateway error carrying the same one-line detail; raise it ``from exc``.
    """
    detail = str(exc)
    if isinstance(exc, FrameTooLarge | BatchTooLarge):
        return EncryptedPayloadTooLarge(detail)
    if isinstance(exc, FramingError):
        return EncryptedFrameMalformed(detail)
    if isinstance(exc, SealVersionUnsupported):
        return SealVersionNotSupported(detail)
    if isinstance(exc, ContextRejected):
        return PublicContextRejected(detail)
    if isinstance(exc, CiphertextRejected | ShapeMismatch):
        return EncryptedInputRejected(detail)
    return EncryptedInputRejected(detail)
