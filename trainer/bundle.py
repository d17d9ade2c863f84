"""Model bundles: ONNX (skl2onnx) + model card, content-addressed in a model store.

Layout of a bundle directory `<store>/<sha256>/`:

* `model.onnx` — scikit-learn `LogisticRegression` with the raw-unit coefficients
  (standardisation folded in), converted by skl2onnx with a float64 input `x` of
  shape (n, n_features) and outputs `label` (int64, (n,)) and `probabilities`
  (float64, (n, 2)); column 1 is P(y = 1).
* `card.json` — the model card (see :func:`result_to_card`).
* `manifest.json` — `{"format": "twopm-bundle/1", "files": {name: sha256}}` in
  canonical JSON (sorted keys, no spaces).

The bundle's sha256 is the sha256 of `manifest.json`'s bytes; it is the directory
name and the `modelHash` published on chain. :func:`load_bundle` recomputes every
digest, so a bundle that verifies is byte-for-byte the one that was published.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.newton import FloatArray
from trainer.task import TrainingResult

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "ModelBundle",
    "WrittenBundle",
    "feature_schema_hash",
    "load_bundle",
    "result_to_card",
    "write_bundle",
]

BUNDLE_FORMAT = "twopm-bundle/1"
CARD_FORMAT = "twopm-model-card/1"
_FILES = ("card.json", "model.onnx")


class BundleError(ValueError):
    """A bundle is missing, malformed, or does not match its expected digest."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def feature_schema_hash(feature_names: list[str] | tuple[str, ...], label: str) -> str:
    """sha256 of the feature schema (the `featureSchemaHash` published on chain).

    Args:
        feature_names: features in model order.
        label: label column.

    Returns:
        Hex digest of canonical JSON `{"features": [...], "label": ..., "dtype": "float64"}`.
    """
    schema = {"dtype": "float64", "features": list(feature_names), "label": label}
    return hashlib.sha256(_canonical(schema)).hexdigest()


def result_to_card(
    result: TrainingResult, *, secure: bool, job_name: str = "", round_trips: int | None = None
) -> dict[str, Any]:
    """The model card of a training result (JSON-ready, deterministic).

    Args:
        result: the training result.
        secure: whether the sums went through SecAgg+.
        job_name: free text.
        round_trips: message round trips used (None if unknown).

    Returns:
        The card: feature names and order, raw-unit coefficients and intercept, the
        standardisation, penalty, rounds, convergence, per-node row counts and held-out
        metrics.
    """
    cfg = result.config
    names = list(cfg.feature_names)
    return {
        "format": CARD_FORMAT,
        "job_name": job_name,
        "model": "logistic_regression",
        "feature_names": names,
        "label": cfg.label,
        "feature_schema_sha256": feature_schema_hash(names, cfg.label),
        "coefficients": {n: float(c) for n, c in zip(names, result.coef, strict=True)},
        "coef": [float(c) for c in result.coef],
        "intercept": float(result.intercept),
        "standardisation": {
            "mean": [float(v) for v in result.standardisation.mean],
            "scale": [float(v) for v in result.standardisation.scale],
            "folded_into_coefficients": True,
        },
        "coef_standardised": [float(v) for v in result.coef_standardised],
        "penalty": (
            {"type": "none"}
            if cfg.l2_c is None
            else {"type": "l2", "C": cfg.l2_c, "on": "standardised features, not the intercept"}
        ),
        "training": {
            "algorithm": "federated Newton-Raphson (IRLS)",
            "secure_aggregation": "flower-secagg+" if secure else "none",
            "rounds": result.iterations,
            "max_iter": cfg.max_iter,
            "converged": result.converged,
            "gtol_per_row": cfg.gtol,
            "round_trips": round_trips,
            "history": result.history,
        },
        "n_rows": result.n_rows,
        "nodes": [n.as_dict() for n in result.nodes],
        "evaluation": {
            "method": "each node holds out a seeded share of its rows; a second fit on the "
            "remaining rows runs alongside the model fit; metrics of that fit on each "
            "node's held-out rows",
            "holdout_fraction": cfg.holdout_fraction,
            "holdout_seed": cfg.holdout_seed,
            "eval_fit_converged": result.eval_converged,
            "per_node": {str(n.node_id): dict(n.metrics) for n in result.nodes},
        },
        "onnx": {"input": "x", "dtype": "float64", "probability_output": "probabilities"},
    }


def _onnx_bytes(coef: FloatArray, intercept: float) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression()
    lr.classes_ = np.array([0, 1])
    lr.coef_ = np.asarray(coef, dtype=np.float64).reshape(1, -1)
    lr.intercept_ = np.array([intercept], dtype=np.float64)
    lr.n_features_in_ = lr.coef_.shape[1]
    lr.n_iter_ = np.array([0])
    onx = to_onnx(
        lr,
        initial_types=[("x", DoubleTensorType([None, lr.coef_.shape[1]]))],
        options={id(lr): {"zipmap": False}},
        target_opset=17,
    )
    return bytes(onx.SerializeToString())


@dataclass(frozen=True)
class WrittenBundle:
    """Where a bundle was stored.

    Attributes:
        path: the bundle directory `<store>/<sha256>`.
        sha256: the bundle digest (hex, 64 chars).
    """

    path: Path
    sha256: str


def write_bundle(card: dict[str, Any], model_store: str | Path) -> WrittenBundle:
    """Write a bundle into a model store (atomically; idempotent for equal content).

    Args:
        card: a card from :func:`result_to_card`.
        model_store: the store directory (created if missing).

    Returns:
        The bundle's location and digest.
    """
    files = {
        "card.json": json.dumps(card, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n",
        "model.onnx": _onnx_bytes(np.asarray(card["coef"]), float(card["intercept"])),
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
    }
    manifest_bytes = _canonical(manifest)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    store = Path(model_store)
    store.mkdir(parents=True, exist_ok=True)
    final = store / digest
    if final.is_dir():
        return WrittenBundle(final, digest)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=store))
    for name, data in {**files, "manifest.json": manifest_bytes}.items():
        (tmp / name).write_bytes(data)
    try:
        os.replace(tmp, final)
    except OSError:  # a concurrent writer won the race with the same content
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return WrittenBundle(final, digest)


@dataclass(frozen=True)
class ModelBundle:
    """A verified bundle, ready to serve.

    Attributes:
        sha256: the bundle digest (hex).
        feature_names: features in model order.
        coef: float64 (n_features,), raw-unit coefficients.
        intercept: raw-unit intercept.
        onnx_bytes: the ONNX model (input `x`, float64 (n, n_features)).
        card: the full model card.
    """

    sha256: str
    feature_names: tuple[str, ...]
    coef: FloatArray
    intercept: float
    onnx_bytes: bytes
    card: dict[str, Any]

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """P(y = 1) from the coefficients (no ONNX runtime needed).

        Args:
            x: float64 array of shape (n, n_features), columns in `feature_names` order.

        Returns:
            float64 array of shape (n,).
        """
        from trainer.newton import sigmoid

        return sigmoid(np.asarray(x, dtype=np.float64) @ self.coef + self.intercept)


def _normalise_hex(h: str) -> str:
    h = h.lower().removeprefix("0x")
    if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise BundleError(f"not a sha256 hex digest: {h!r}")
    return h


def load_bundle(path: str | Path, expected_sha256: str | bytes | None = None) -> ModelBundle:
    """Load a bundle and verify it.

    Args:
        path: the bundle directory, or a model store directory (then
            `expected_sha256` selects the bundle).
        expected_sha256: the digest to require, hex (with or without 0x) or 32 raw
            bytes (as read from `SubnetRegistry`); None = only self-consistency.

    Returns:
        The bundle.

    Raises:
        BundleError: if a file is missing, a digest differs, or the card is malformed.
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
    if sorted(listed) != sorted(_FILES):
        raise BundleError(f"{p}: manifest lists {sorted(listed)}, expected {list(_FILES)}")
    data: dict[str, bytes] = {}
    for name in _FILES:
        try:
            data[name] = (p / name).read_bytes()
        except OSError as exc:
            raise BundleError(f"{p}: missing {name}") from exc
        if hashlib.sha256(data[name]).hexdigest() != listed[name]:
            raise BundleError(f"{p}: {name} does not match its sha256 in the manifest")
    try:
        card = json.loads(data["card.json"])
        names = tuple(str(n) for n in card["feature_names"])
        coef = np.asarray(card["coef"], dtype=np.float64)
        intercept = float(card["intercept"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{p}: malformed card.json") from exc
    if coef.shape != (len(names),):
        raise BundleError(f"{p}: {coef.shape[0]} coefficients for {len(names)} features")
    return ModelBundle(digest, names, coef, intercept, data["model.onnx"], card)
