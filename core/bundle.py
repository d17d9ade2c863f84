"""The model bundle format and its verification (the trainer writes bundles, the gateway serves them).

Layout of a bundle directory ``<store>/<sha256>/``:

* ``model.onnx``: scikit-learn ``LogisticRegression`` with the raw-unit coefficients
  (standardisation folded in), converted by skl2onnx with a float64 input ``x`` of
  shape (n, n_features) and outputs ``label`` (int64, (n,)) and ``probabilities``
  (float64, (n, 2)); column 1 is P(y = 1).
* ``card.json``: the model card (``trainer.bundle.result_to_card``); this module reads its
  ``feature_names``, ``coef`` and ``intercept``.
* ``manifest.json``: ``{"format": "twopm-bundle/1", "files": {name: sha256}}`` in
  canonical JSON (sorted keys, no spaces).

The bundle's sha256 is the sha256 of ``manifest.json``'s bytes; it is the directory
name and the ``modelHash`` published on chain. :func:`verify_bundle` recomputes every
digest, so a bundle that verifies is byte-for-byte the one that was published.

Standard library only: the gateway verifies bundles without importing the trainer, numpy or ONNX.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_FORMAT",
    "BundleError",
    "VerifiedBundle",
    "canonical_json",
    "feature_schema_hash",
    "manifest_for",
    "verify_bundle",
]

BUNDLE_FORMAT = "twopm-bundle/1"
#: The files a bundle's manifest lists, besides ``manifest.json`` itself.
BUNDLE_FILES = ("card.json", "model.onnx")


class BundleError(ValueError):
    """A bundle is missing, malformed, or does not match its expected digest."""


def canonical_json(obj: Any) -> bytes:
    """``obj`` as canonical JSON bytes: sorted keys, no spaces, no NaN.

    Args:
        obj: A JSON-ready value.

    Returns:
        UTF-8 bytes.

    Raises:
        ValueError: ``obj`` holds a NaN or an infinity.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def feature_schema_hash(feature_names: list[str] | tuple[str, ...], label: str) -> str:
    """sha256 of the feature schema (the ``featureSchemaHash`` published on chain).

    Args:
        feature_names: Features in model order.
        label: Label column.

    Returns:
        Hex digest of canonical JSON ``{"features": [...], "label": ..., "dtype": "float64"}``.
    """
    schema = {"dtype": "float64", "features": list(feature_names), "label": label}
    return hashlib.sha256(canonical_json(schema)).hexdigest()


def manifest_for(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """The manifest of a bundle holding ``files``, and the bundle's digest.

    Args:
        files: File name -> content, the names of :data:`BUNDLE_FILES`.

    Returns:
        ``(manifest.json bytes, the bundle sha256 as 64 hex characters)``.
    """
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
    }
    manifest_bytes = canonical_json(manifest)
    return manifest_bytes, hashlib.sha256(manifest_bytes).hexdigest()


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose every digest matched.

    Attributes:
        path: The bundle directory.
        sha256: The bundle digest (hex, 64 characters, no ``0x``).
        feature_names: Features in model order.
        coef: Raw-unit coefficients, one per feature.
        intercept: Raw-unit intercept.
        onnx_bytes: The ONNX model (input ``x``, float64 (n, n_features)).
        card: The full model card.
    """

    path: Path
    sha256: str
    feature_names: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    onnx_bytes: bytes
    card: dict[str, Any]


def _normalise_hex(h: str) -> str:
    h = h.lower().removeprefix("0x")
    if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise BundleError(f"not a sha256 hex digest: {h!r}")
    return h


def verify_bundle(path: str | Path, expected_sha256: str | bytes | None = None) -> VerifiedBundle:
    """Read a bundle and verify every digest in it.

    Args:
        path: The bundle directory, or a model store directory (then ``expected_sha256``
            selects the bundle).
        expected_sha256: The digest to require, hex (with or without 0x) or 32 raw
            bytes (as read from ``SubnetRegistry``); None = only self-consistency.

    Returns:
        The bundle.

    Raises:
        BundleError: A file is missing, a digest differs, or the card is malformed.
    """
    expected: str | None = None
    if isinstance(expected_sha256, bytes | bytearray):
        if len(expected_sha256) != 32:
            raise BundleError("expected_sha256 as bytes must be 32 bytes")
        expected = bytes(expected_sha256).hex()
    elif expected_sha256 is not None:
        expected = _normalise_hex(expected_sha256)
    p = Path(path)
    if not (p / "manifest.json").is_file() and expected is not None:
        p = p / expected
    try:
        manifest_bytes = (p / "manifest.json").read_bytes()
    except OSError as exc:
        raise BundleError(f"{p}: no manifest.json ({exc.strerror})") from exc
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    if expected is not None and digest != expected:
        raise BundleError(f"{p}: bundle sha256 {digest} does not match expected {expected}")
    try:
        manifest = json.loads(manifest_bytes)
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{p}: unknown bundle format {manifest.get('format')!r}")
        listed = manifest["files"]
    except (ValueError, KeyError, AttributeError) as exc:
        raise BundleError(f"{p}: malformed manifest.json") from exc
    if sorted(listed) != sorted(BUNDLE_FILES):
        raise BundleError(f"{p}: manifest lists {sorted(listed)}, expected {list(BUNDLE_FILES)}")
    data: dict[str, bytes] = {}
    for name in BUNDLE_FILES:
        try:
            data[name] = (p / name).read_bytes()
        except OSError as exc:
            raise BundleError(f"{p}: missing {name}") from exc
        if hashlib.sha256(data[name]).hexdigest() != listed[name]:
            raise BundleError(f"{p}: {name} does not match its sha256 in the manifest")
    try:
        card = json.loads(data["card.json"])
        names = tuple(str(n) for n in card["feature_names"])
        raw_coef = card["coef"]
        if not isinstance(raw_coef, list):
            raise TypeError("coef is not a list")
        coef = tuple(float(c) for c in raw_coef)
        intercept = float(card["intercept"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{p}: malformed card.json") from exc
    if len(coef) != len(names):
        raise BundleError(f"{p}: {len(coef)} coefficients for {len(names)} features")
    return VerifiedBundle(p, digest, names, coef, intercept, data["model.onnx"], card)
