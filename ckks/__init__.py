"""The CKKS codec shared by the SDK and the gateway.

Parameters and their security check, client keys and encryption in the row and column
layouts, the binary framing of requests, responses and public contexts, decryption and
the sigmoid, and the coefficient packing of the ``COEFF`` layout. Only this package knows the wire
format; ``gateway.he`` evaluates on it through this public API (no private module is imported
from outside).
"""

from ckks._codec import (
    ClientContext,
    Wire,
    galois_element,
    next_pow2,
    rotation_steps,
    row_period,
    sigmoid,
)
from ckks._errors import (
    BatchTooLarge,
    CiphertextRejected,
    CkksError,
    ContextRejected,
    FrameTooLarge,
    FramingError,
    InsecureParameters,
    SealVersionUnsupported,
    ShapeMismatch,
)
from ckks._framing import (
    DEFAULT_LIMITS,
    ContextFrame,
    FrameLimits,
    RequestFrame,
    ResponseFrame,
    Section,
    encode_context,
    encode_request,
    encode_response,
    parse_context,
    parse_request,
    parse_response,
)
from ckks._packing import coefficients_to_slots, constant_coefficient, reversed_weights
from ckks._params import (
    COMPACT,
    DEFAULT_PARAMS,
    PARAM_SETS,
    PRECISE,
    CkksParams,
    Layout,
    ParamSet,
    param_set_by_id,
    param_set_by_name,
    seal_context,
)
from ckks._sealio import (
    SEAL_MINOR_VERSIONS,
    check_seal_header,
    ciphertext_to_version,
    load_into,
    save_bytes,
    seal_minor_version,
    uncompressed,
)
from ckks._sets import AffineModel, SetClient, check_standardised, sets_json

__all__ = [
    "COMPACT",
    "DEFAULT_LIMITS",
    "DEFAULT_PARAMS",
    "PARAM_SETS",
    "PRECISE",
    "SEAL_MINOR_VERSIONS",
    "AffineModel",
    "BatchTooLarge",
    "CiphertextRejected",
    "CkksError",
    "CkksParams",
    "ClientContext",
    "ContextFrame",
    "ContextRejected",
    "FrameLimits",
    "FrameTooLarge",
    "FramingError",
    "InsecureParameters",
    "Layout",
    "ParamSet",
    "RequestFrame",
    "ResponseFrame",
    "SealVersionUnsupported",
    "Section",
    "SetClient",
    "ShapeMismatch",
    "Wire",
    "check_seal_header",
    "check_standardised",
    "ciphertext_to_version",
    "coefficients_to_slots",
    "constant_coefficient",
    "encode_context",
    "encode_request",
    "encode_response",
    "galois_element",
    "load_into",
    "next_pow2",
    "param_set_by_id",
    "param_set_by_name",
    "parse_context",
    "parse_request",
    "parse_response",
    "reversed_weights",
    "rotation_steps",
    "row_period",
    "save_bytes",
    "seal_context",
    "seal_minor_version",
    "sets_json",
    "sigmoid",
    "uncompressed",
]
