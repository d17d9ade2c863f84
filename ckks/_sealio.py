"""Bytes in and out of SEAL objects.

TenSEAL's ``sealapi`` binds SEAL's ``save``/``load`` only to file paths, so this module
goes through one anonymous in-memory file per thread (``memfd_create`` on Linux, a
temporary file elsewhere): no disk, no base64, one copy each way. SEAL compresses with
zstd by default; :func:`uncompressed` rewrites a blob with compression mode "none",
which SEAL loads about twice as fast (CKKS coefficients are uniform modulo their primes,
so zstd saves only the unused high bits: 10 % here).
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
import weakref
import zlib
from typing import Any

import zstandard

from ckks._errors import SealVersionUnsupported

__all__ = [
    "SEAL_HEADER_SIZE",
    "SEAL_MINOR_VERSIONS",
    "check_seal_header",
    "ciphertext_to_version",
    "load_into",
    "save_bytes",
    "seal_minor_version",
    "uncompressed",
]

SEAL_HEADER_SIZE = 16
"""Size of SEAL's serialization header (``seal/serialization.h``)."""

_SEAL_MAGIC = 0xA15E
_SEAL_MAJOR = 4
_COMPR_NONE, _COMPR_ZSTD = 0, 2
_COMPR_MODES = frozenset({0, 1, 2})  # none, zlib, zstd
_HEADER = struct.Struct("<HBBBBHQ")  # magic, header_size, major, minor, compr_mode, reserved, size

_local = threading.local()


class _Scratch:
    """A per-thread in-memory file and a path SEAL's C++ streams can open."""

    def __init__(self) -> None:
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("twopm-ckks", 0)
            self.path = f"/proc/self/fd/{self.fd}"
        else:  # pragma: no cover - non-Linux
            self.fd, self.path = tempfile.mkstemp(prefix="twopm-ckks-")
            weakref.finalize(self, os.unlink, self.path)
        weakref.finalize(self, os.close, self.fd)  # when its thread ends


def _scratch() -> _Scratch:
    scratch = getattr(_local, "scratch", None)
    if scratch is None:
        scratch = _local.scratch = _Scratch()
    return scratch


def save_bytes(obj: Any) -> bytes:
    """Serialize a SEAL object (or a ``Serializable``) with SEAL's default compression.

    Args:
        obj: Anything with ``save(path)`` from ``tenseal.sealapi``.

    Returns:
        SEAL's serialized bytes, starting with its 16-byte header.
    """
    scratch = _scratch()
    os.ftruncate(scratch.fd, 0)
    obj.save(scratch.path)
    size = os.fstat(scratch.fd).st_size
    return os.pread(scratch.fd, size, 0)


def load_into(obj: Any, context: Any, data: bytes | memoryview) -> Any:
    """Deserialize SEAL bytes into ``obj``; SEAL validates them against ``context``.

    Args:
        obj: An empty ``tenseal.sealapi`` object (``Ciphertext``, ``GaloisKeys``, ...).
        context: The ``SEALContext`` the data must be valid for.
        data: Bytes as made by :func:`save_bytes`; check the header first with
            :func:`check_seal_header`.

    Returns:
        ``obj``, loaded.

    Raises:
        ValueError, RuntimeError: SEAL's own errors; callers translate them.
    """
    scratch = _scratch()
    os.ftruncate(scratch.fd, 0)
    os.pwrite(scratch.fd, data, 0)
    obj.load(context, scratch.path)
    return obj


def check_seal_header(blob: bytes | memoryview) -> str | None:
    """Check SEAL's 16-byte header without calling SEAL.

    Args:
        blob: One serialized SEAL object.

    Returns:
        ``None`` if the header is well formed and its size field equals ``len(blob)``,
        else a one-line reason.
    """
    if len(blob) < SEAL_HEADER_SIZE:
        return f"SEAL object of {len(blob)} bytes is shorter than its header"
    magic, header_size, major, _minor, compr_mode, reserved, size = _HEADER.unpack_from(blob, 0)
    if magic != _SEAL_MAGIC or header_size != SEAL_HEADER_SIZE:
        return "not a SEAL object (bad magic)"
    if major != _SEAL_MAJOR:
        return f"SEAL serialization version {major} is not {_SEAL_MAJOR}"
    if compr_mode not in _COMPR_MODES or reserved != 0:
        return "SEAL header has an unknown compression mode or reserved bits set"
    if size != len(blob):
        return f"SEAL header says {size} bytes but {len(blob)} are present"
    return None


def uncompressed(blob: bytes, max_size: int = 64 << 20) -> bytes:
    """The same SEAL object serialized with compression mode "none".

    SEAL writes its 16-byte header and then, in zstd mode, one standard zstd frame of
    the object's members (``seal/serialization.cpp``); this decompresses the frame and
    rewrites the header's mode and size fields. SEAL loads the result without a
    decompression pass.

    Args:
        blob: A SEAL object as made by :func:`save_bytes` (zstd or already "none").
        max_size: Largest decompressed size accepted, in bytes.

    Returns:
        The uncompressed serialization (unchanged if it already was).

    Raises:
        ValueError: Not a well-formed SEAL blob, a compression mode other than zstd or
            none, or a frame that does not decompress within ``max_size``.
    """
    reason = check_seal_header(blob)
    if reason is not None:
        raise ValueError(reason)
    magic, header_size, major, minor, compr_mode, reserved, _ = _HEADER.unpack_from(blob, 0)
    if compr_mode == _COMPR_NONE:
        return bytes(blob)
    if compr_mode != _COMPR_ZSTD:
        raise ValueError(f"SEAL compression mode {compr_mode} is not zstd")
    try:
        body = zstandard.ZstdDecompressor().decompress(
            blob[SEAL_HEADER_SIZE:], max_output_size=max_size
        )
    except zstandard.ZstdError as exc:
        raise ValueError(f"SEAL blob does not decompress: {exc}") from exc
    size = SEAL_HEADER_SIZE + len(body)
    header = _HEADER.pack(magic, header_size, major, minor, _COMPR_NONE, reserved, size)
    return header + body


# ---------------------------------------------------------------------------- SEAL 4.1 / 4.3

SEAL_MINOR_VERSIONS = (1, 3)
"""SEAL serialization versions 4.1 (node-seal 7) and 4.3 (the TenSEAL 0.3.18 wheel) are read."""

_CT_MEMBERS = 73
"""Bytes of a Ciphertext's fixed members before its data array (``Ciphertext::save_members``):
parms_id 32, is_ntt_form 1, size 8, poly_modulus_degree 8, coeff_modulus_size 8, scale 8,
correction_factor 8."""
_U64 = struct.Struct("<Q")


def seal_minor_version(blob: bytes | memoryview) -> int:
    """The minor serialization version in a SEAL object's outer header (4.x -> x).

    Args:
        blob: One serialized SEAL object; check it first with :func:`check_seal_header`.

    Returns:
        The minor version byte.
    """
    return int(_HEADER.unpack_from(blob, 0)[3])


def _body(blob: bytes | memoryview, compr_mode: int, max_size: int) -> bytes:
    data = bytes(blob[SEAL_HEADER_SIZE:])
    if compr_mode == _COMPR_NONE:
        return data
    try:
        if compr_mode == _COMPR_ZSTD:
            return zstandard.ZstdDecompressor().decompress(data, max_output_size=max_size)
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, max_size)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("zlib stream longer than allowed or truncated")
        return out
    except (zstandard.ZstdError, zlib.error) as exc:
        raise ValueError(f"SEAL blob does not decompress: {exc}") from exc


def _check_nested(body: bytearray, offset: int, minor: int, what: str) -> int:
    """Check one nested SEAL header in ``body`` at ``offset``; return its size field."""
    if offset + SEAL_HEADER_SIZE > len(body):
        raise ValueError(f"SEAL ciphertext truncated before its {what}")
    magic, header_size, major, inner_minor, compr_mode, reserved, size = _HEADER.unpack_from(
        body, offset
    )
    if magic != _SEAL_MAGIC or header_size != SEAL_HEADER_SIZE or major != _SEAL_MAJOR:
        raise ValueError(f"SEAL ciphertext's {what} has no SEAL header")
    if inner_minor != minor:
        raise ValueError(f"SEAL ciphertext's {what} says version 4.{inner_minor}, not 4.{minor}")
    if compr_mode != _COMPR_NONE or reserved != 0 or size < SEAL_HEADER_SIZE:
        raise ValueError(f"SEAL ciphertext's {what} has a bad header")
    return int(size)


def ciphertext_to_version(
    blob: bytes | memoryview, minor: int, *, compress: bool, max_size: int = 4 << 20
) -> bytes:
    """Rewrite a serialized SEAL ``Ciphertext`` for another 4.x serialization version.

    SEAL 4.1 and 4.3 lay a ciphertext out identically; only the version bytes differ, in the
    outer header and in the nested headers of its data array and, for a seeded ciphertext,
    of its PRNG seed object (measured: ``shared/FACTS.md``, "CKKS in the browser"). This walks
    that structure (no byte-pattern search), checks every nested header and that the parts
    add up to the object's size, and writes the headers with ``minor``.

    Args:
        blob: One serialized ciphertext, compression none, zlib or zstd, version 4.1 or 4.3.
        minor: The version to write (1 or 3).
        compress: True: zstd (SEAL's default, what clients receive); False: none (what
            SEAL loads fastest).
        max_size: Largest decompressed size accepted, in bytes.

    Returns:
        The rewritten ciphertext.

    Raises:
        SealVersionUnsupported: The object is in a version other than 4.1 or 4.3, or ``minor``
            is not one of them.
        ValueError: The object is malformed (bad headers, does not decompress, parts that
            do not add up).
    """
    if minor not in SEAL_MINOR_VERSIONS:
        raise SealVersionUnsupported(f"SEAL serialization 4.{minor} is not written here")
    reason = check_seal_header(blob)
    if reason is not None:
        raise ValueError(reason)
    magic, header_size, major, old_minor, compr_mode, reserved, _ = _HEADER.unpack_from(blob, 0)
    if old_minor not in SEAL_MINOR_VERSIONS:
        raise SealVersionUnsupported(
            f"SEAL serialization 4.{old_minor} is not supported; send 4.1 or 4.3"
        )
    body = bytearray(_body(blob, compr_mode, max_size))
    offset = _CT_MEMBERS
    if len(body) < offset:
        raise ValueError("SEAL ciphertext truncated in its members")
    parts = 0
    while offset < len(body):
        what = "data array" if parts == 0 else "seed"
        size = _check_nested(body, offset, old_minor, what)
        if parts == 0:
            if size < SEAL_HEADER_SIZE + 8:
                raise ValueError("SEAL ciphertext's data array is too short")
            (count,) = _U64.unpack_from(body, offset + SEAL_HEADER_SIZE)
            if size != SEAL_HEADER_SIZE + 8 + 8 * count:
                raise ValueError("SEAL ciphertext's data array size does not match its count")
        body[offset + 4] = minor  # header bytes: magic 2, header_size 1, major 1, minor 1
        offset += size
        parts += 1
        if parts > 2:
            raise ValueError("SEAL ciphertext has more parts than data and seed")
    if offset != len(body) or parts == 0:
        raise ValueError("SEAL ciphertext's parts do not add up to its size")
    if compress:
        payload = zstandard.ZstdCompressor(level=3).compress(bytes(body))
        mode = _COMPR_ZSTD
    else:
        payload, mode = bytes(body), _COMPR_NONE
    size = SEAL_HEADER_SIZE + len(payload)
    return _HEADER.pack(magic, header_size, major, minor, mode, reserved, size) + payload
