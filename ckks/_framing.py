"""Binary framing of encrypted requests, responses and public contexts (no base64).

All integers are little-endian. Each frame is a fixed header, a table of ``u32``
lengths, then the raw SEAL-serialized objects back to back; nothing may follow.

Request (``POST /v1/subnets/{id}/infer`` body)::

    magic "2PMQ" | version u8 = 1 | layout u8 (1 row, 2 column, 3 coeff) | param_set u8
    | flags u8 = 0 | n_rows u32 | n_features u32 | n_ciphertexts u32 | n_ciphertexts x length u32
    | ciphertexts

    row layout:    n_ciphertexts == n_rows, one row per ciphertext, n_features <= N
    coeff layout:  n_ciphertexts == n_rows, one row per ciphertext, n_features <= N
    column layout: n_ciphertexts == ceil(n_features / 2), n_rows <= N/2: ciphertext k
                   holds features 2k and 2k+1 of every row as the real and imaginary
                   parts of the slots (complex packing halves upload and work)

    param_set: 0 for the subnet's default parameters (``ckks`` in its JSON); 1 ``compact``,
    2 ``precise`` (``ckks.PARAM_SETS``), coeff layout only, one row per ciphertext.

Response::

    magic "2PMR" | version u8 = 1 | layout u8 | param_set u8 | flags u8 = 0 | n_rows u32
    | n_ciphertexts u32 | n_ciphertexts x length u32 | ciphertexts

    row layout: one ciphertext per row, the logit in slot 0;
    coeff layout: one ciphertext per row, the logit in the constant coefficient;
    column layout: one ciphertext, the logit of row i in slot i.

Public context (``POST /v1/he/contexts`` body; with a secret-key section it is the
private key file the SDK keeps)::

    magic "2PMC" | version u8 = 1 | layout u8 | flags u16 = 0 | row_slots u32
    | n_sections u16 | n_sections x (kind u8, length u32) | sections

    kinds: 1 encryption parameters, 2 Galois keys, 3 relinearization keys,
    4 public key, 5 secret key; each at most once, parameters required.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ckks._errors import BatchTooLarge, FrameTooLarge, FramingError
from ckks._params import CkksParams, Layout, ParamSet, param_set_by_id
from ckks._sealio import check_seal_header

__all__ = [
    "ContextFrame",
    "FrameLimits",
    "RequestFrame",
    "ResponseFrame",
    "Section",
    "encode_context",
    "encode_request",
    "encode_response",
    "parse_context",
    "parse_request",
    "parse_response",
]

VERSION = 1
REQUEST_MAGIC = b"2PMQ"
RESPONSE_MAGIC = b"2PMR"
CONTEXT_MAGIC = b"2PMC"

_REQ = struct.Struct("<4sBBBBIII")
_RESP = struct.Struct("<4sBBBBII")
_CTX = struct.Struct("<4sBBHIH")
_SECTION = struct.Struct("<BI")
_U32 = struct.Struct("<I")


class Section(enum.IntEnum):
    """Kinds of section in a context frame."""

    PARAMETERS = 1
    GALOIS_KEYS = 2
    RELIN_KEYS = 3
    PUBLIC_KEY = 4
    SECRET_KEY = 5


@dataclass(frozen=True)
class FrameLimits:
    """Bounds applied while parsing frames from untrusted peers.

    Attributes:
        max_request_bytes: Largest request frame accepted, in bytes (default 8 MiB).
        max_rows_per_row_request: Most rows in one row- or coeff-layout request (one
            ciphertext each).
        max_features: Most features in one column-layout request.
        max_context_bytes: Largest context frame accepted, in bytes (default 8 MiB).
        max_ciphertext_bytes: Largest single ciphertext, in bytes; ``None`` derives it from
            the parameters: an uncompressed two-polynomial ciphertext at the top level
            plus 1 KiB of metadata.
    """

    max_request_bytes: int = 8 << 20
    max_rows_per_row_request: int = 64
    max_features: int = 1024
    max_context_bytes: int = 8 << 20
    max_ciphertext_bytes: int | None = None

    def ciphertext_bound(self, params: CkksParams | ParamSet) -> int:
        """Largest accepted ciphertext in bytes for ``params``.

        Args:
            params: The parameter set.

        Returns:
            The explicit bound, or 2 polynomials x data primes x N x 8 bytes + 1024.
        """
        if self.max_ciphertext_bytes is not None:
            return self.max_ciphertext_bytes
        data_primes = max(1, len(params.coeff_mod_bit_sizes) - 1)
        return 2 * data_primes * params.poly_modulus_degree * 8 + 1024

    def ciphertexts_per_request(self, params: CkksParams | ParamSet) -> int:
        """How many ciphertexts of the largest accepted size fit in one request frame.

        Args:
            params: The parameter set.

        Returns:
            ``(max_request_bytes - header) // (ciphertext_bound + 4)`` (each ciphertext
            also takes a ``u32`` length); 31 with the defaults at N = 8192.
        """
        room = self.max_request_bytes - _REQ.size
        return room // (self.ciphertext_bound(params) + _U32.size)


DEFAULT_LIMITS = FrameLimits()


@dataclass(frozen=True)
class RequestFrame:
    """A parsed request frame; the ciphertexts are still SEAL bytes.

    Attributes:
        layout: Row or column layout.
        n_rows: Rows in the request (what billing counts).
        n_features: Features per row.
        ciphertexts: SEAL-serialized ciphertexts, ``n_rows`` (row, coeff) or
            ``ceil(n_features / 2)`` (column), as zero-copy views into the frame.
        param_set: 0 (the subnet's default parameters) or a named set's ``set_id``.
    """

    layout: Layout
    n_rows: int
    n_features: int
    ciphertexts: tuple[memoryview, ...] = field(repr=False)
    param_set: int = 0


@dataclass(frozen=True)
class ResponseFrame:
    """A parsed response frame.

    Attributes:
        layout: Row or column layout.
        n_rows: Rows answered.
        ciphertexts: SEAL-serialized result ciphertexts (see the module doc), as views.
        param_set: As in the request.
    """

    layout: Layout
    n_rows: int
    ciphertexts: tuple[memoryview, ...] = field(repr=False)
    param_set: int = 0


@dataclass(frozen=True)
class ContextFrame:
    """A parsed context frame.

    Attributes:
        layout: The layout the context is made for.
        row_slots: Row period in slots (power of two) the Galois keys cover; 0 unless the
            row layout.
        sections: Section kind -> SEAL bytes (views into the frame).
    """

    layout: Layout
    row_slots: int
    sections: dict[Section, memoryview] = field(repr=False)


def _layout(value: int) -> Layout:
    try:
        return Layout(value)
    except ValueError:
        raise FramingError(f"unknown layout {value}") from None


def _split(data: bytes, offset: int, lengths: Sequence[int], what: str) -> tuple[memoryview, ...]:
    if offset + sum(lengths) != len(data):
        if offset + sum(lengths) > len(data):
            raise FramingError(
                f"{what} frame truncated: {len(data)} of {offset + sum(lengths)} bytes"
            )
        raise FramingError(f"{what} frame has {len(data) - offset - sum(lengths)} trailing bytes")
    parts = []
    view = memoryview(data)
    for i, length in enumerate(lengths):
        part = view[offset : offset + length]
        reason = check_seal_header(part)
        if reason is not None:
            raise FramingError(f"{what} part {i}: {reason}")
        parts.append(part)
        offset += length
    return tuple(parts)


def _lengths(data: bytes, offset: int, count: int, what: str) -> list[int]:
    end = offset + 4 * count
    if end > len(data):
        raise FramingError(f"{what} frame truncated in its length table")
    return [_U32.unpack_from(data, offset + 4 * i)[0] for i in range(count)]


def encode_request(
    layout: Layout,
    n_rows: int,
    n_features: int,
    ciphertexts: Sequence[bytes | memoryview],
    *,
    param_set: int = 0,
) -> bytes:
    """Frame an encrypted request.

    Args:
        layout: Row or column.
        n_rows: Rows encrypted.
        n_features: Features per row.
        ciphertexts: SEAL-serialized ciphertexts in layout order.
        param_set: 0, or a named set's ``set_id`` (coeff layout).

    Returns:
        The request body.
    """
    header = _REQ.pack(
        REQUEST_MAGIC, VERSION, int(layout), param_set, 0, n_rows, n_features, len(ciphertexts)
    )
    table = b"".join(_U32.pack(len(c)) for c in ciphertexts)
    return b"".join([header, table, *ciphertexts])


def parse_request(
    data: bytes, params: CkksParams, limits: FrameLimits = DEFAULT_LIMITS
) -> RequestFrame:
    """Parse and bound-check a request frame (cheap: no SEAL deserialization).

    Args:
        data: The request body.
        params: The subnet's CKKS parameters (for the slot count and ciphertext bound).
        limits: Parsing bounds.

    Returns:
        The frame; ``n_rows`` is what billing counts.

    Raises:
        FrameTooLarge: The frame or a ciphertext exceeds its bound.
        BatchTooLarge: More rows than N/2 slots (column) or than the row limit (row).
        FramingError: Anything else malformed.
    """
    if len(data) > limits.max_request_bytes:
        raise FrameTooLarge(f"request of {len(data)} bytes exceeds {limits.max_request_bytes}")
    if len(data) < _REQ.size:
        raise FramingError(f"request of {len(data)} bytes is shorter than its header")
    magic, version, layout_code, set_id, flags, n_rows, n_features, n_cts = _REQ.unpack_from(
        data, 0
    )
    if magic != REQUEST_MAGIC:
        raise FramingError("not an encrypted request (bad magic)")
    if version != VERSION or flags != 0:
        raise FramingError(f"unsupported request version {version} or flags {flags}")
    layout = _layout(layout_code)
    shape: CkksParams | ParamSet = params
    if set_id:
        named = param_set_by_id(set_id)
        if named is None:
            raise FramingError(f"unknown CKKS parameter set {set_id}")
        if layout is not Layout.COEFF:
            raise FramingError(f"parameter set {named.name} takes the coeff layout only")
        shape = named
    if n_rows < 1 or n_features < 1:
        raise FramingError("a request needs at least one row and one feature")
    if layout.one_row_per_ciphertext:
        if n_rows > limits.max_rows_per_row_request:
            raise BatchTooLarge(
                f"{n_rows} rows exceed {limits.max_rows_per_row_request} per {layout.label}-layout "
                "request"
            )
        width = shape.poly_modulus_degree  # row: 2 features per slot; coeff: 1 per coefficient
        if n_features > width:
            raise BatchTooLarge(f"{n_features} features exceed the {width} a {layout.label} holds")
        expected = n_rows
    else:
        if n_rows > params.slots:
            raise BatchTooLarge(f"{n_rows} rows exceed the {params.slots} slots of a ciphertext")
        if n_features > limits.max_features:
            raise BatchTooLarge(f"{n_features} features exceed {limits.max_features}")
        expected = (n_features + 1) // 2
    if n_cts != expected:
        raise FramingError(f"{layout.label} layout needs {expected} ciphertexts, frame has {n_cts}")
    lengths = _lengths(data, _REQ.size, n_cts, "request")
    bound = limits.ciphertext_bound(shape)
    for i, length in enumerate(lengths):
        if length > bound:
            raise FrameTooLarge(f"ciphertext {i} of {length} bytes exceeds {bound}")
    parts = _split(data, _REQ.size + 4 * n_cts, lengths, "request")
    return RequestFrame(layout, n_rows, n_features, parts, set_id)


def encode_response(
    layout: Layout,
    n_rows: int,
    ciphertexts: Sequence[bytes | memoryview],
    *,
    param_set: int = 0,
) -> bytes:
    """Frame an encrypted response.

    Args:
        layout: The request's layout.
        n_rows: Rows answered.
        ciphertexts: SEAL-serialized result ciphertexts.
        param_set: The request's parameter set byte.

    Returns:
        The response body.
    """
    header = _RESP.pack(
        RESPONSE_MAGIC, VERSION, int(layout), param_set, 0, n_rows, len(ciphertexts)
    )
    table = b"".join(_U32.pack(len(c)) for c in ciphertexts)
    return b"".join([header, table, *ciphertexts])


def parse_response(data: bytes, max_bytes: int = 64 << 20) -> ResponseFrame:
    """Parse a response frame (client side).

    Args:
        data: The response body.
        max_bytes: Largest body accepted, in bytes.

    Returns:
        The frame.

    Raises:
        FrameTooLarge: Over ``max_bytes``.
        FramingError: Malformed, truncated, or the counts do not fit the layout.
    """
    if len(data) > max_bytes:
        raise FrameTooLarge(f"response of {len(data)} bytes exceeds {max_bytes}")
    if len(data) < _RESP.size:
        raise FramingError(f"response of {len(data)} bytes is shorter than its header")
    magic, version, layout_code, set_id, flags, n_rows, n_cts = _RESP.unpack_from(data, 0)
    if magic != RESPONSE_MAGIC:
        raise FramingError("not an encrypted response (bad magic)")
    if version != VERSION or flags != 0:
        raise FramingError(f"unsupported response version {version} or flags {flags}")
    layout = _layout(layout_code)
    expected = n_rows if layout.one_row_per_ciphertext else 1
    if n_rows < 1 or n_cts != expected:
        raise FramingError(
            f"{layout.label} response for {n_rows} rows cannot hold {n_cts} ciphertexts"
        )
    lengths = _lengths(data, _RESP.size, n_cts, "response")
    parts = _split(data, _RESP.size + 4 * n_cts, lengths, "response")
    return ResponseFrame(layout, n_rows, parts, set_id)


def encode_context(
    layout: Layout, row_slots: int, sections: Iterable[tuple[Section, bytes | memoryview]]
) -> bytes:
    """Frame a context.

    Args:
        layout: The layout the context is for.
        row_slots: Row width covered by the Galois keys (0 for the column layout).
        sections: ``(kind, SEAL bytes)`` pairs, parameters first.

    Returns:
        The context bytes.
    """
    items = list(sections)
    header = _CTX.pack(CONTEXT_MAGIC, VERSION, int(layout), 0, row_slots, len(items))
    table = b"".join(_SECTION.pack(int(kind), len(blob)) for kind, blob in items)
    return b"".join([header, table, *(blob for _, blob in items)])


def parse_context(data: bytes, limits: FrameLimits = DEFAULT_LIMITS) -> ContextFrame:
    """Parse a context frame (structure only; see ``gateway.he`` for the policy).

    Args:
        data: The context bytes.
        limits: Parsing bounds (``max_context_bytes``).

    Returns:
        The frame.

    Raises:
        FrameTooLarge: Over ``limits.max_context_bytes``.
        FramingError: Malformed, truncated, duplicate or unknown sections, no parameters.
    """
    if len(data) > limits.max_context_bytes:
        raise FrameTooLarge(f"context of {len(data)} bytes exceeds {limits.max_context_bytes}")
    if len(data) < _CTX.size:
        raise FramingError(f"context of {len(data)} bytes is shorter than its header")
    magic, version, layout_code, flags, row_slots, n_sections = _CTX.unpack_from(data, 0)
    if magic != CONTEXT_MAGIC:
        raise FramingError("not a 2PM CKKS context (bad magic)")
    if version != VERSION or flags != 0:
        raise FramingError(f"unsupported context version {version} or flags {flags}")
    layout = _layout(layout_code)
    table_end = _CTX.size + _SECTION.size * n_sections
    if table_end > len(data):
        raise FramingError("context frame truncated in its section table")
    kinds: list[Section] = []
    lengths: list[int] = []
    for i in range(n_sections):
        kind_code, length = _SECTION.unpack_from(data, _CTX.size + _SECTION.size * i)
        try:
            kind = Section(kind_code)
        except ValueError:
            raise FramingError(f"unknown context section kind {kind_code}") from None
        if kind in kinds:
            raise FramingError(f"context section {kind.name} appears twice")
        kinds.append(kind)
        lengths.append(length)
    if Section.PARAMETERS not in kinds:
        raise FramingError("context has no encryption-parameters section")
    parts = _split(data, table_end, lengths, "context")
    return ContextFrame(layout, row_slots, dict(zip(kinds, parts, strict=True)))
