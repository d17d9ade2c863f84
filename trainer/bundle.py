"""Model bundles: ONNX (skl2onnx) + model card, content-addressed in a model store.

The format and its verification live in :mod:`core.bundle` (the gateway reads bundles without
the trainer); this module writes bundles from a training result (:func:`result_to_card`,
:func:`write_bundle`) and loads them as numpy arrays (:func:`load_bundle`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.bundle import (
    BUNDLE_FORMAT,
    BundleError,
    feature_schema_hash,
    manifest_for,
    verify_bundle,
)
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

CARD_FORMAT = "twopm-model-card/1"


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
            "min_nodes": cfg.quorum,
            "dropped_nodes": list(result.dropped_nodes),
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
    manifest_bytes, digest = manifest_for(files)
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


def load_bundle(path: str | Path, expected_sha256: str | bytes | None = None) -> ModelBundle:
    """Load a bundle and verify it (:func:`core.bundle.verify_bundle`).

    Args:
        path: the bundle directory, or a model store directory (then
            `expected_sha256` selects the bundle).
        expected_sha256: the digest to require, hex (with or without 0x) or 32 raw
            bytes (as read from `SubnetRegistry`); None = only self-consistency.

    Returns:
        The bundle, its coefficients as a float64 array.

    Raises:
        BundleError: if a file is missing, a digest differs, or the card is malformed.
    """
    bundle = verify_bundle(path, expected_sha256)
    coef = np.asarray(bundle.coef, dtype=np.float64)
    return ModelBundle(
        bundle.sha256, bundle.feature_names, coef, bundle.intercept, bundle.onnx_bytes, bundle.card
    )
