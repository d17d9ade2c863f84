"""Evaluation for the named parameter sets (``compact``, ``precise``) and their measured error.

One request ciphertext per row, coefficient layout, standardised features (``ckks._sets``)::

    y = x(X) * plain(W(X), weight_scale)     W = w_0 - sum_{i>=1} w_i X^(N-i), standardised w
    y = rescale(y)                           compact only: the answer is at the last level
    y += plain(b)                            coefficient 0 of y is w.x + b

The SEAL serialization version (4.1 from node-seal 7 in the browser, 4.3 from TenSEAL) is handled
here and nowhere else in the gateway: each ciphertext is rewritten to 4.3 before SEAL loads it
(:func:`ckks.ciphertext_to_version`, which also checks the structure), and the answer is written
back in the version the request came in. Other versions are refused (422 ``he-seal-version``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal.sealapi as seal

from ckks import (
    DEFAULT_PARAMS,
    PARAM_SETS,
    AffineModel,
    CiphertextRejected,
    Layout,
    ParamSet,
    RequestFrame,
    SealVersionUnsupported,
    SetClient,
    ShapeMismatch,
    ciphertext_to_version,
    coefficients_to_slots,
    encode_response,
    param_set_by_id,
    parse_request,
    reversed_weights,
    save_bytes,
    seal_minor_version,
)
from gateway.he._context import load_fresh_ciphertext

__all__ = ["SetEvaluation", "SetKernels", "measure_logit_error", "measure_set_errors"]

_NATIVE_MINOR = 3
"""The serialization version of the SEAL inside the TenSEAL wheel (4.3)."""


@dataclass(frozen=True)
class SetEvaluation:
    """One request's answer and timings.

    Attributes:
        response: The response frame.
        load_s: Seconds converting and loading ciphertexts.
        kernel_s: Seconds in the arithmetic.
        save_s: Seconds serializing and framing.
        seal_minor: The SEAL version of the request (and answer), 1 or 3.
    """

    response: bytes
    load_s: float
    kernel_s: float
    save_s: float
    seal_minor: int


class _SetState:
    """SEAL objects of one set in this process, and its encoded models (bounded LRU)."""

    def __init__(self, pset: ParamSet, max_models: int) -> None:
        self.pset = pset
        self.context = pset.context()
        self.encoder = seal.CKKSEncoder(self.context)
        self.evaluator = seal.Evaluator(self.context)
        self.max_models = max(1, max_models)
        self.models: OrderedDict[str, tuple[Any, Any]] = OrderedDict()

    def encoded(self, key: str, model: AffineModel) -> tuple[Any, Any]:
        """(W plaintext at the weight scale, bias plaintext at the answer level and scale)."""
        hit = self.models.get(key)
        if hit is not None:
            self.models.move_to_end(key)
            return hit
        pset = self.pset
        weight_scale, _ = pset.scales(model.logit_bound(pset.input_bound))
        n = pset.poly_modulus_degree
        w_plain = seal.Plaintext()
        slots = coefficients_to_slots(reversed_weights(model.weights, n))
        self.encoder.encode(slots.tolist(), self.context.first_parms_id(), weight_scale, w_plain)
        if w_plain.is_zero():
            raise ShapeMismatch("the model's weights are all zero; nothing to evaluate")
        level = self.context.first_context_data()
        if pset.rescale:
            level = level.next_context_data()
        # The same double arithmetic as SEAL's: multiply the scales, divide by the dropped prime.
        answer_scale = pset.input_scale * weight_scale / self._divisor()
        bias = seal.Plaintext()
        self.encoder.encode(model.intercept, level.parms_id(), answer_scale, bias)
        self.models[key] = (w_plain, bias)
        while len(self.models) > self.max_models:
            self.models.popitem(last=False)
        return w_plain, bias

    def _divisor(self) -> float:
        """What the rescale divides the scale by (the dropped prime), 1 without a rescale."""
        if not self.pset.rescale:
            return 1.0
        first = self.context.first_context_data().parms().coeff_modulus()
        return float(first[-1].value())


class SetKernels:
    """Evaluates set requests for one worker process.

    Args:
        model_cache_size: Encoded models kept per set (LRU).
    """

    def __init__(self, model_cache_size: int = 16) -> None:
        self._states = {s.set_id: _SetState(s, model_cache_size) for s in PARAM_SETS.values()}

    def evaluate(self, frame: RequestFrame, model: AffineModel, model_key: str) -> SetEvaluation:
        """Evaluate ``model`` on a parsed set request.

        Args:
            frame: A request frame with ``param_set`` != 0 (coeff layout, one row per
                ciphertext).
            model: The served model, standardised.
            model_key: Cache key of the model (its hash).

        Returns:
            The response frame (in the request's SEAL version) and timings.

        Raises:
            SealVersionUnsupported: A ciphertext in another SEAL version than 4.1 or 4.3.
            CiphertextRejected: Versions differ between ciphertexts, or a ciphertext is
                malformed, refused by SEAL, or not fresh at the set's top level and scale.
            ShapeMismatch: Unknown set or all-zero weights.
        """
        started = time.perf_counter()
        pset = param_set_by_id(frame.param_set)
        state = self._states.get(frame.param_set)
        if pset is None or state is None:
            raise ShapeMismatch(f"unknown CKKS parameter set {frame.param_set}")
        w_plain, bias = state.encoded(model_key, model)
        minors = {seal_minor_version(blob) for blob in frame.ciphertexts}
        if len(minors) != 1:
            raise CiphertextRejected(
                f"the ciphertexts mix SEAL versions {sorted(f'4.{m}' for m in minors)}"
            )
        (minor,) = minors
        cts = [self._load(state, blob, i) for i, blob in enumerate(frame.ciphertexts)]
        loaded = time.perf_counter()
        for ct in cts:
            state.evaluator.multiply_plain_inplace(ct, w_plain)
            if pset.rescale:
                state.evaluator.rescale_to_next_inplace(ct)
            state.evaluator.add_plain_inplace(ct, bias)
        computed = time.perf_counter()
        blobs = [save_bytes(ct) for ct in cts]  # zstd, 4.3
        if minor != _NATIVE_MINOR:
            blobs = [ciphertext_to_version(b, minor, compress=True) for b in blobs]
        response = encode_response(Layout.COEFF, frame.n_rows, blobs, param_set=pset.set_id)
        done = time.perf_counter()
        return SetEvaluation(response, loaded - started, computed - loaded, done - computed, minor)

    @staticmethod
    def _load(state: _SetState, blob: memoryview, index: int) -> Any:
        try:
            raw = ciphertext_to_version(blob, _NATIVE_MINOR, compress=False)
        except SealVersionUnsupported as exc:
            raise SealVersionUnsupported(f"ciphertext {index}: {exc}") from exc
        except ValueError as exc:
            raise CiphertextRejected(f"ciphertext {index} is malformed: {exc}") from exc
        return load_fresh_ciphertext(
            state.context,
            raw,
            scale_bits=state.pset.input_scale_bits,
            index=index,
            where=f"the {state.pset.name} set",
        )


def measure_logit_error(
    pset: ParamSet, model: AffineModel, *, rows: int = 128, seed: int = 0
) -> float:
    """The largest |decrypted logit - exact logit| over rows of the model's input ball.

    The rows: the two that reach the logit bound (z = +-R w / ||w||_2), the zero row, and
    ``rows - 3`` drawn uniformly from the ball ||z||_2 <= R; encrypted with a throwaway key,
    evaluated by the same kernel as requests, decrypted.

    Args:
        pset: The parameter set.
        model: The model, standardised.
        rows: Rows measured (>= 3).
        seed: Seed of the random rows.

    Returns:
        The largest absolute error (a measurement, not a proof).
    """
    radius = pset.input_bound
    w = np.asarray(model.weights)
    unit = w / max(float(np.linalg.norm(w)), 1e-300)
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(max(0, rows - 3), w.shape[0]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = radius * rng.uniform(size=(directions.shape[0], 1)) ** (1 / w.shape[0])
    z = np.vstack([radius * unit, -radius * unit, np.zeros_like(w), directions * radii])
    exact = z @ np.asarray(model.weights) + model.intercept
    client = SetClient(pset)
    kernels = SetKernels(model_cache_size=1)
    worst = 0.0
    for start in range(0, z.shape[0], 64):
        part = z[start : start + 64]
        request = client.encrypt(part, check=False)
        frame = parse_request(request, DEFAULT_PARAMS)
        answer = kernels.evaluate(frame, model, "measure").response
        got = client.decrypt_logits(answer)
        worst = max(worst, float(np.abs(got - exact[start : start + 64]).max()))
    return worst


def measure_set_errors(model: AffineModel, *, rows: int = 192) -> dict[str, float]:
    """:func:`measure_logit_error` for every named set, rounded up to two significant digits.

    Args:
        model: The model, standardised.
        rows: Rows measured per set.

    Returns:
        Set name -> measured max |logit error| (what ``GET /v1/subnets/{id}`` states).
    """
    out = {}
    for name, pset in PARAM_SETS.items():
        worst = measure_logit_error(pset, model, rows=rows)
        digits = 1 - math.floor(math.log10(worst)) if worst > 0 else 0
        out[name] = math.ceil(worst * 10**digits) / 10**digits if worst > 0 else 0.0
    return out
