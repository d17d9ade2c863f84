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
from typing import Any

import zstandard

__all__ = ["SEAL_HEADER_SIZE", "check_seal_header", "load_into", "save_bytes", "uncompressed"]

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
