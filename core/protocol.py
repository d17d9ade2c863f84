"""The HTTP names the gateway answers with and its clients (SDK, CLI, page, benchmarks) send or read.

Written once here so the two sides cannot drift. Header names are matched case-insensitively on
both sides (RFC 9110 section 5.1); they are written here in their canonical case. Problem bodies
follow RFC 9457: ``type`` is :data:`PROBLEM_TYPE_BASE` followed by a slug.
"""

from __future__ import annotations

__all__ = [
    "CONTEXT_HEADER",
    "HE_CONTEXT_NOT_FOUND",
    "INSUFFICIENT_STAKE",
    "MODEL_VERSION_HEADER",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "RECEIPT_HEADER",
    "SESSION_COOKIE",
    "problem_type",
]

#: The session cookie set by ``POST /v1/auth/verify`` (HttpOnly, Secure, SameSite=Strict).
SESSION_COOKIE = "twopm_session"
#: Response header of every billed call: the receipt id (0x-hex, 32 bytes).
RECEIPT_HEADER = "X-Receipt-Id"
#: Response header of inference calls: the model version that answered (decimal).
MODEL_VERSION_HEADER = "X-Model-Version"
#: Request header of a row-layout encrypted inference: the id of an uploaded CKKS context.
CONTEXT_HEADER = "X-Context-Id"

#: Media type of every error body (RFC 9457 section 3).
PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Prefix of every problem ``type`` URI of 2PM; the slug follows.
PROBLEM_TYPE_BASE = "https://2pm.dev/problems/"

#: Slug of a 403 for a caller whose stake is below the subnet's minimum (the SDK's
#: ``InsufficientStake``).
INSUFFICIENT_STAKE = "insufficient-stake"
#: Slug of a 404 for an unknown or expired CKKS context id (the SDK uploads the context again once).
HE_CONTEXT_NOT_FOUND = "he-context-not-found"


def problem_type(slug: str) -> str:
    """The problem ``type`` URI of ``slug``.

    Args:
        slug: A lowercase, hyphenated problem name, e.g. ``"insufficient-stake"``.

    Returns:
        :data:`PROBLEM_TYPE_BASE` followed by ``slug``.
    """
    return PROBLEM_TYPE_BASE + slug
