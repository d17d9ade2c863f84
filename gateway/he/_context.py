"""Validation of uploaded public CKKS contexts (``POST /v1/he/contexts``).

A public context is accepted only if it is exactly what evaluation needs:

* the advertised encryption parameters (same scheme, N and primes);
* no secret key, no public key, no relinearization keys (nothing here multiplies two
  ciphertexts, and clients encrypt with their own secret key);
* column and coeff layouts: no Galois keys at all;
* row layout: Galois keys for exactly the rotation steps 1, 2, 4, ... < ``row_slots``
  and nothing else (all Galois keys for N = 8192 are 17.8 MB; 30 features pair into 16 slots and need
  steps 1, 2, 4, 8: 1.5 MB).

Its id is the sha256 of the uploaded bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import tenseal.sealapi as seal

from ckks import (
    DEFAULT_LIMITS,
    CiphertextRejected,
    CkksParams,
    ContextRejected,
    FrameLimits,
    Layout,
    Section,
    galois_element,
    load_into,
    parse_context,
    rotation_steps,
    seal_context,
)

__all__ = [
    "PublicContextInfo",
    "ServerContext",
    "load_fresh_ciphertext",
    "load_public_context",
    "validate_public_context",
]

_SEAL_ERRORS = (ValueError, RuntimeError, IndexError, OverflowError, TypeError)


def load_fresh_ciphertext(
    context: Any,
    data: bytes | memoryview,
    *,
    scale_bits: int,
    index: int,
    where: str,
) -> Any:
    """Load one request ciphertext and check that a client made it fresh for ``context``.

    Fresh: at the context's top level (``first_parms_id``), two polynomials in NTT form (as
    SEAL's encryptors make them), at scale exactly 2^scale_bits (what the kernels' plaintexts
    were encoded for).

    Args:
        context: The ``SEALContext`` of the request's parameters.
        data: SEAL-serialized ciphertext bytes (header checked by the framing).
        scale_bits: log2 of the scale the request must carry.
        index: The ciphertext's position in the request, for messages.
        where: Names the parameters in messages ("these parameters", "the compact set").

    Returns:
        The loaded ``tenseal.sealapi.Ciphertext``.

    Raises:
        CiphertextRejected: SEAL refuses the bytes, or the ciphertext is at another level,
            has another size, is not in NTT form, or has another scale.
    """
    try:
        ct = load_into(seal.Ciphertext(), context, data)
    except _SEAL_ERRORS as exc:
        raise CiphertextRejected(f"ciphertext {index} does not load: {exc}") from exc
    if list(ct.parms_id()) != list(context.first_parms_id()):
        raise CiphertextRejected(f"ciphertext {index} is not at the top level of {where}")
    if ct.size() != 2 or not ct.is_ntt_form():
        raise CiphertextRejected(f"ciphertext {index} is not a fresh two-part CKKS ciphertext")
    if ct.scale != float(2**scale_bits):
        raise CiphertextRejected(
            f"ciphertext {index} has scale {ct.scale!r}, expected 2^{scale_bits}"
        )
    return ct


@dataclass(frozen=True)
class PublicContextInfo:
    """What the gateway stores and answers for an accepted public context.

    Attributes:
        context_id: sha256 hex of the uploaded bytes.
        layout: The layout the context was made for.
        row_slots: Row period in slots its Galois keys cover (0 unless the row layout);
            row-layout requests need ``row_period(n_features) <= row_slots``.
        size_bytes: Size of the upload in bytes.
    """

    context_id: str
    layout: Layout
    row_slots: int
    size_bytes: int


@dataclass(frozen=True)
class ServerContext:
    """A validated public context loaded into SEAL objects (cached per worker).

    Attributes:
        info: Its identity and shape.
        galois_keys: ``tenseal.sealapi.GaloisKeys`` for the row layout, else ``None``.
    """

    info: PublicContextInfo
    galois_keys: Any


def load_public_context(
    blob: bytes, params: CkksParams, limits: FrameLimits = DEFAULT_LIMITS
) -> ServerContext:
    """Validate a public context and load its keys.

    Args:
        blob: The uploaded context frame.
        params: The advertised parameters it must match.
        limits: Parsing bounds (``max_context_bytes``).

    Returns:
        The loaded context.

    Raises:
        FramingError: Malformed or truncated (``FrameTooLarge`` if over the size bound).
        ContextRejected: Secret key, other parameters, unneeded or missing keys, or keys
            SEAL refuses.
    """
    frame = parse_context(blob, limits)
    sections = frame.sections
    if Section.SECRET_KEY in sections:
        raise ContextRejected("the context carries a secret key; upload only its public part")
    if Section.RELIN_KEYS in sections:
        raise ContextRejected("relinearization keys are not needed; leave them out")
    if Section.PUBLIC_KEY in sections:
        raise ContextRejected("a public key is not needed (clients encrypt with their secret key)")
    context = seal_context(params)
    expected = context.key_context_data().parms()
    uploaded = _load_parameters(sections[Section.PARAMETERS])
    if not (
        uploaded.scheme() == seal.SCHEME_TYPE.CKKS
        and uploaded.poly_modulus_degree() == params.poly_modulus_degree
        and [m.value() for m in uploaded.coeff_modulus()]
        == [m.value() for m in expected.coeff_modulus()]
    ):
        raise ContextRejected(
            "the context's encryption parameters are not the advertised ones "
            f"(CKKS, N={params.poly_modulus_degree}, {list(params.coeff_mod_bit_sizes)} bits)"
        )
    galois_keys = None
    if frame.layout is not Layout.ROW:
        if frame.row_slots != 0 or Section.GALOIS_KEYS in sections:
            raise ContextRejected(
                f"a {frame.layout.label}-layout context needs no Galois keys; leave them out"
            )
    else:
        row_slots = frame.row_slots
        if row_slots < 1 or row_slots > params.slots or row_slots & (row_slots - 1):
            raise ContextRejected(
                f"row_slots {row_slots} is not a power of two in 1..{params.slots}"
            )
        steps = rotation_steps(row_slots)
        if not steps:
            if Section.GALOIS_KEYS in sections:
                raise ContextRejected("one-slot rows need no Galois keys; leave them out")
        else:
            if Section.GALOIS_KEYS not in sections:
                raise ContextRejected(f"a row-layout context needs Galois keys for steps {steps}")
            galois_keys = _load_galois_keys(sections[Section.GALOIS_KEYS], context)
            elements = [galois_element(s, params.poly_modulus_degree) for s in steps]
            missing = [
                s for s, e in zip(steps, elements, strict=True) if not galois_keys.has_key(e)
            ]
            if missing:
                raise ContextRejected(f"Galois keys for steps {missing} are missing")
            if galois_keys.size() != len(steps):
                raise ContextRejected(
                    f"the context carries {galois_keys.size()} Galois keys; only the "
                    f"{len(steps)} for steps {steps} are needed"
                )
    info = PublicContextInfo(
        context_id=hashlib.sha256(blob).hexdigest(),
        layout=frame.layout,
        row_slots=frame.row_slots,
        size_bytes=len(blob),
    )
    return ServerContext(info, galois_keys)


def validate_public_context(
    blob: bytes, params: CkksParams, limits: FrameLimits = DEFAULT_LIMITS
) -> PublicContextInfo:
    """Validate a public context for ``POST /v1/he/contexts`` (CPU-bound: run it off the loop).

    Args:
        blob: The uploaded context frame.
        params: The advertised parameters it must match.
        limits: Parsing bounds.

    Returns:
        Its id (sha256 hex), layout, row width and size.

    Raises:
        FramingError: Malformed, truncated or oversized (``FrameTooLarge``).
        ContextRejected: See :func:`load_public_context`.
    """
    return load_public_context(blob, params, limits).info


def _load_parameters(blob: memoryview) -> Any:
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    try:
        # EncryptionParameters.load takes only a path; load_into passes (context, path),
        # so go through a tiny adapter.
        load_into(_ParmsLoader(parms), None, blob)
    except _SEAL_ERRORS as exc:
        raise ContextRejected(f"encryption parameters do not load: {exc}") from exc
    return parms


class _ParmsLoader:
    def __init__(self, parms: Any) -> None:
        self.parms = parms

    def load(self, _context: Any, path: str) -> None:
        self.parms.load(path)


def _load_galois_keys(blob: memoryview, context: Any) -> Any:
    try:
        keys = load_into(seal.GaloisKeys(), context, blob)
    except _SEAL_ERRORS as exc:
        raise ContextRejected(f"Galois keys do not load for these parameters: {exc}") from exc
    if list(keys.parms_id()) != list(context.key_parms_id()):
        raise ContextRejected("Galois keys were made for other parameters")
    return keys
