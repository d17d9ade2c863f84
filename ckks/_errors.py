"""Errors of the CKKS codec, shared by the SDK and the gateway.

The tree::

    CkksError
    ├── InsecureParameters     the parameters miss 128-bit security or the precision rule
    ├── FramingError           a frame is malformed, truncated or has trailing bytes
    │   └── FrameTooLarge      a frame or one of its parts is larger than allowed
    ├── BatchTooLarge          more rows than the ciphertext slots (or the row limit)
    ├── ShapeMismatch          feature count differs from the model's or the context's
    ├── CiphertextRejected     SEAL refuses a ciphertext, or it was made for another context
    │   └── SealVersionUnsupported  a SEAL object in a serialization version other than 4.1, 4.3
    └── ContextRejected        a public context is refused (secret key, parameters, extra keys)

SEAL's own exceptions (``ValueError``/``RuntimeError`` from the bindings) are translated
where SEAL is called, with ``raise ... from exc``; none escapes the codec untranslated.
All errors pickle (the gateway raises them in worker processes).
"""

from __future__ import annotations

__all__ = [
    "BatchTooLarge",
    "CiphertextRejected",
    "CkksError",
    "ContextRejected",
    "FrameTooLarge",
    "FramingError",
    "InsecureParameters",
    "SealVersionUnsupported",
    "ShapeMismatch",
]


class CkksError(Exception):
    """Base of every error the CKKS codec raises on purpose.

    The message is one line that can be shown to the user as is.
    """


class InsecureParameters(CkksError):
    """The parameters do not meet 128-bit security or give inaccurate logits."""


class FramingError(CkksError):
    """A frame is malformed: bad magic or version, truncated, counts that do not add up."""


class FrameTooLarge(FramingError):
    """A frame, or one ciphertext inside it, is larger than the configured bound."""


class BatchTooLarge(CkksError):
    """More rows than fit: over the N/2 slots (column layout) or the per-request row limit."""


class ShapeMismatch(CkksError):
    """The feature count differs from the model's, or exceeds the context's row width."""


class CiphertextRejected(CkksError):
    """SEAL refused a ciphertext, or it belongs to other parameters, level or scale."""


class SealVersionUnsupported(CiphertextRejected):
    """A well-formed SEAL object in a serialization version not read here (4.1 and 4.3 are)."""


class ContextRejected(CkksError):
    """A public context is refused: it carries a secret key, wrong parameters or unneeded keys."""
