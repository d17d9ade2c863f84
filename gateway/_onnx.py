"""A verified bundle as a servable model: the onnxruntime session, checked against its card.

:func:`load_model` verifies a bundle's digests against the on-chain hash
(:func:`core.bundle.verify_bundle`), opens the ONNX graph in onnxruntime with its raw scores
exposed, and refuses a graph that computes another function than the card's coefficients
(its raw scores on the zero row and the unit rows give back the intercept and every weight),
since plaintext requests run the ONNX graph and encrypted ones the card's coefficients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.bundle import BundleError, verify_bundle
from gateway.he import LinearModel

__all__ = ["LoadedModel", "ModelRefused", "load_model"]

_COEF_RTOL = 1e-9
"""Relative tolerance of the ONNX-against-card check (float64 arithmetic, a few ulps)."""


class ModelRefused(Exception):
    """A bundle could not be fetched or failed verification (the message says why)."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model bundle, ready to answer plaintext and encrypted requests.

    Attributes:
        model_hash: 0x-hex sha256 of the bundle (the on-chain ``modelHash``).
        feature_names: Features in model order.
        linear: Coefficients and intercept for the encrypted path (from the card).
        session: onnxruntime session of the bundle's ONNX graph (thread-safe ``run``).
        input_name: The graph's input (float64, shape (n, n_features)).
        scores_output: Name of the raw-score output exposed for logits, or None when
            logits are derived from the probabilities.
        loaded_at_s: Unix time it was verified.
    """

    model_hash: str
    feature_names: tuple[str, ...]
    linear: LinearModel
    session: Any = field(repr=False)
    input_name: str = "x"
    scores_output: str | None = "raw_scores"
    loaded_at_s: float = 0.0

    @property
    def n_features(self) -> int:
        """Number of features the model takes."""
        return len(self.feature_names)

    def predict(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Logits and probabilities through onnxruntime, one batched run.

        Args:
            x: float64 array of shape (n_rows, n_features), columns in
                :attr:`feature_names` order.

        Returns:
            ``(logits, probabilities)``, each float64 of shape (n_rows,): ``w.x + b`` as the
            ONNX graph computes it, and P(y = 1).
        """
        outputs = ["probabilities"] + ([self.scores_output] if self.scores_output else [])
        result = self.session.run(outputs, {self.input_name: np.ascontiguousarray(x)})
        proba = np.asarray(result[0], dtype=np.float64)
        if self.scores_output:
            scores = np.asarray(result[1], dtype=np.float64)
            logits = scores[:, -1] if scores.ndim == 2 else scores
        else:  # pragma: no cover - every skl2onnx logistic regression has raw scores
            logits = np.log(proba[:, 1]) - np.log(proba[:, 0])
        return logits, proba[:, 1]


def load_model(path: Path, model_hash: str) -> LoadedModel:
    """Load and verify a bundle against its on-chain hash (blocking: run it in a thread).

    Args:
        path: The bundle directory (or a model store holding ``<sha256>/``).
        model_hash: The on-chain ``modelHash``, 0x hex.

    Returns:
        The servable model.

    Raises:
        ModelRefused: A digest differs, the card or the ONNX graph is unusable, or the graph
            disagrees with the card's coefficients.
    """
    try:
        bundle = verify_bundle(path, model_hash)
    except BundleError as exc:
        raise ModelRefused(str(exc)) from exc
    mean, scale = _standardisation(bundle.card, len(bundle.coef))
    try:
        linear = LinearModel.from_arrays(list(bundle.coef), bundle.intercept, mean, scale)
        if mean is not None:
            linear.affine()  # a scale of 0 or a wrong length refuses the model here
    except ValueError as exc:
        raise ModelRefused(f"unusable coefficients: {exc}") from exc
    session, input_name, scores = _session(bundle.onnx_bytes)
    model = LoadedModel(
        model_hash="0x" + bundle.sha256,
        feature_names=bundle.feature_names,
        linear=linear,
        session=session,
        input_name=input_name,
        scores_output=scores,
        loaded_at_s=time.time(),
    )
    _check_against_card(model, np.asarray(bundle.coef, dtype=np.float64), bundle.intercept)
    return model


def _standardisation(
    card: dict[str, Any], n_features: int
) -> tuple[list[float] | None, list[float] | None]:
    """The card's feature means and scales (the CKKS parameter sets standardise with them).

    Returns ``(None, None)`` when the card states none; the coefficients stay in raw units
    either way (``folded_into_coefficients``).
    """
    block = card.get("standardisation")
    if not isinstance(block, dict):
        return None, None
    mean, scale = block.get("mean"), block.get("scale")
    if not (isinstance(mean, list) and isinstance(scale, list)):
        return None, None
    if len(mean) != n_features or len(scale) != n_features:
        raise ModelRefused("the card's standardisation does not match its feature count")
    try:
        return [float(v) for v in mean], [float(v) for v in scale]
    except (TypeError, ValueError) as exc:
        raise ModelRefused(f"the card's standardisation is not numeric: {exc}") from exc


def _session(onnx_bytes: bytes) -> tuple[Any, str, str | None]:
    """An onnxruntime session that also outputs the graph's raw scores (the logits)."""
    import onnx
    import onnxruntime as ort

    try:
        graph = onnx.load_from_string(onnx_bytes)
        produced = {name for node in graph.graph.node for name in node.output}
        outputs = {o.name for o in graph.graph.output}
        scores: str | None = None
        if "raw_scores" in produced:
            scores = "raw_scores"
            if scores not in outputs:
                graph.graph.output.append(
                    onnx.helper.make_tensor_value_info(scores, onnx.TensorProto.DOUBLE, None)
                )
        if "probabilities" not in outputs:
            raise ModelRefused("the ONNX graph has no 'probabilities' output")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run side by side; no oversubscription
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except ModelRefused:
        raise
    except Exception as exc:  # onnx/onnxruntime raise many unrelated types
        raise ModelRefused(f"the ONNX model does not load: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelRefused(f"the ONNX model takes {len(inputs)} inputs, not one")
    return session, str(inputs[0].name), scores


def _check_against_card(
    model: LoadedModel, coef: npt.NDArray[np.float64], intercept: float
) -> None:
    """Refuse a bundle whose ONNX graph computes another function than its card says."""
    n = model.n_features
    probe = np.vstack([np.zeros((1, n)), np.eye(n)])
    try:
        logits, proba = model.predict(probe)
    except Exception as exc:
        raise ModelRefused(f"the ONNX model fails on a probe batch: {exc}") from exc
    if logits.shape != (n + 1,) or proba.shape != (n + 1,):
        raise ModelRefused("the ONNX model's outputs do not have one value per row")
    got = np.concatenate([[logits[0]], logits[1:] - logits[0]])
    want = np.concatenate([[intercept], coef])
    if not np.allclose(got, want, rtol=_COEF_RTOL, atol=_COEF_RTOL):
        raise ModelRefused("the ONNX model disagrees with the coefficients of its model card")
