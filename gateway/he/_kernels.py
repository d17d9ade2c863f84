"""Evaluation of ``w.x + b`` on CKKS ciphertexts, straight on SEAL (``tenseal.sealapi``).

Column layout (ciphertext k holds features 2k and 2k+1 of up to N/2 rows as the real
and imaginary parts of its slots)::

    logits = Re( rescale( sum_k (x_2k + i x_2k+1) * plain(w_2k - i w_2k+1) ) ) + plain(b)

since Re((a + ib)(c - id)) = ac + bd: a plaintext-scalar multiply and an add per pair
of features, one rescale at the end, no evaluation keys; the client keeps the real
parts (the imaginary parts hold sum_k (w_2k x_2k+1 - w_2k+1 x_2k)). Row layout (one row per ciphertext, features paired into complex slots as in the
column layout, tiled with period p = next_pow2(ceil(n_features / 2)))::

    y = rescale( x * plain(tile(conj pairs of w, p)) );  y += rot(y, s) for s = 1, ..., p/2
    y += plain(b)

the rotations run after the rescale, at the last level, where key switching is
cheapest; the real part of every slot then holds the logit (the client reads slot 0). Coeff layout (one
row per ciphertext, features as polynomial coefficients, see ``ckks.coefficients_to_slots``)::

    y = rescale( x(X) * plain(w_0 - sum_i w_i X^(N-i)) ) + plain(b)

one plaintext multiply, no rotations, no keys; w.x + b lands in the constant coefficient.

Headroom: after the rescale the ciphertext lives modulo the 60-bit first prime at scale
2^40, so every |w.x + b| must stay below 2^19 (about 5e5); larger logits wrap around.
Encoded weights and loaded contexts are cached with bounds (LRU).
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import tenseal.sealapi as seal

from ckks import (
    DEFAULT_LIMITS,
    AffineModel,
    CkksParams,
    ContextRejected,
    FrameLimits,
    Layout,
    RequestFrame,
    ShapeMismatch,
    coefficients_to_slots,
    encode_response,
    parse_request,
    reversed_weights,
    rotation_steps,
    row_period,
    save_bytes,
    seal_context,
)
from gateway.he._context import ServerContext, load_fresh_ciphertext, load_public_context
from gateway.he._sets import SetKernels

__all__ = ["ContextNotCached", "Evaluation", "HeEvaluator", "LinearModel"]


K = TypeVar("K")
V = TypeVar("V")


class ContextNotCached(Exception):
    """This worker has not loaded the context yet; resubmit with its bytes."""


class _Lru(Generic[K, V]):
    """A bounded least-recently-used map."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max(1, max_items)
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class LinearModel:
    """A logistic-regression model as the encrypted path needs it.

    Attributes:
        weights: Coefficients, one per feature, in the subnet's feature order (raw units).
        intercept: The bias b.
        mean: The model card's feature means (empty: none), which the named parameter sets
            standardise with.
        scale: The model card's feature scales (empty: none).
    """

    weights: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if (
            not self.weights
            or not all(np.isfinite(self.weights))
            or not np.isfinite(self.intercept)
        ):
            raise ValueError("a linear model needs at least one weight and finite values")

    @classmethod
    def from_arrays(
        cls,
        weights: Sequence[float],
        intercept: float,
        mean: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
    ) -> LinearModel:
        """Build from any float sequence (e.g. sklearn's ``coef_[0]``, ``intercept_[0]``).

        Args:
            weights: float sequence of shape (n_features,).
            intercept: The bias.
            mean: Feature means of the card's standardisation, shape (n_features,), or None.
            scale: Feature scales of the card's standardisation, shape (n_features,), or None.

        Returns:
            The model.
        """
        return cls(
            tuple(float(w) for w in weights),
            float(intercept),
            () if mean is None else tuple(float(v) for v in mean),
            () if scale is None else tuple(float(v) for v in scale),
        )

    def affine(self) -> AffineModel:
        """The model in standardised units (identity standardisation when the card has none).

        Raises:
            ValueError: The standardisation's length differs or a scale is not positive.
        """
        return AffineModel.from_raw(
            self.weights, self.intercept, self.mean or None, self.scale or None
        )

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.weights)

    @property
    def key(self) -> str:
        """sha256 hex of the packed float64 weights and intercept (the cache key)."""
        values = (*self.weights, self.intercept, *self.mean, *self.scale)
        packed = struct.pack(f"<{len(values)}d", *values)
        return hashlib.sha256(packed).hexdigest()


@dataclass(frozen=True)
class Evaluation:
    """The result of one encrypted request.

    Attributes:
        response: The response frame (encrypted logits).
        layout: The request's layout.
        n_rows: Rows evaluated (what billing counts).
        load_s: Seconds spent deserializing and checking ciphertexts.
        kernel_s: Seconds spent in the homomorphic arithmetic.
        save_s: Seconds spent serializing and framing the result.
    """

    response: bytes
    layout: Layout
    n_rows: int
    load_s: float
    kernel_s: float
    save_s: float

    @property
    def server_s(self) -> float:
        """Total seconds: load + kernel + save."""
        return self.load_s + self.kernel_s + self.save_s


class HeEvaluator:
    """Evaluates linear models on encrypted requests; one per worker process.

    Args:
        params: The advertised CKKS parameters.
        limits: Frame parsing bounds.
        context_cache_size: Most public contexts kept loaded (LRU).
        model_cache_size: Most encoded models kept (LRU; a model is keyed per layout and
            row period).
    """

    def __init__(
        self,
        params: CkksParams,
        limits: FrameLimits = DEFAULT_LIMITS,
        *,
        context_cache_size: int = 32,
        model_cache_size: int = 16,
    ) -> None:
        params.check()
        self.params = params
        self.limits = limits
        self._context = seal_context(params)
        self._evaluator = seal.Evaluator(self._context)
        self._encoder = seal.CKKSEncoder(self._context)
        self._contexts: _Lru[str, ServerContext] = _Lru(context_cache_size)
        self._models: _Lru[tuple[str, Layout, int], list[Any]] = _Lru(model_cache_size)
        self._biases: _Lru[tuple[str, float], Any] = _Lru(model_cache_size)
        self._set_kernels: SetKernels | None = None
        self._model_cache_size = model_cache_size
        self._affine: _Lru[str, AffineModel] = _Lru(model_cache_size)

    def add_context(self, blob: bytes) -> ServerContext:
        """Validate a public context, cache it, and return it.

        Args:
            blob: The uploaded context frame.

        Returns:
            The loaded context (its ``info`` carries the id).

        Raises:
            FramingError, ContextRejected: See ``validate_public_context``.
        """
        loaded = load_public_context(blob, self.params, self.limits)
        self._contexts.put(loaded.info.context_id, loaded)
        return loaded

    def has_context(self, context_id: str) -> bool:
        """Whether the context is loaded here.

        Args:
            context_id: sha256 hex id.

        Returns:
            True if cached.
        """
        return self._contexts.get(context_id) is not None

    def evaluate(
        self,
        request: bytes,
        model: LinearModel,
        *,
        context_id: str | None = None,
        context_blob: bytes | None = None,
    ) -> Evaluation:
        """Evaluate ``model`` on an encrypted request.

        Args:
            request: The request frame.
            model: The subnet's current model.
            context_id: Public context of the caller; required for the row layout only
                (the column and coeff layouts use no keys).
            context_blob: The context's bytes, if this worker may not have it cached.

        Returns:
            The encrypted logits and timings.

        Raises:
            ContextNotCached: Row layout, context not cached here and no ``context_blob``.
            FramingError, BatchTooLarge: Malformed or oversized frame.
            ShapeMismatch: Feature count differs from the model's or the context's width.
            CiphertextRejected: SEAL refuses a ciphertext or it does not fit the parameters.
            ContextRejected: ``context_blob`` is refused or does not hash to ``context_id``.
        """
        started = time.perf_counter()
        frame = parse_request(request, self.params, self.limits)
        if frame.n_features != model.n_features:
            raise ShapeMismatch(
                f"request has {frame.n_features} features, the model takes {model.n_features}"
            )
        if frame.param_set:
            return self._evaluate_set(frame, model, started)
        if frame.layout is Layout.COLUMN:
            cts = [self._load(blob, i) for i, blob in enumerate(frame.ciphertexts)]
            loaded = time.perf_counter()
            result = [self._column(cts, model)]
        elif frame.layout is Layout.COEFF:
            cts = [self._load(blob, i) for i, blob in enumerate(frame.ciphertexts)]
            loaded = time.perf_counter()
            result = [self._coeff(ct, model) for ct in cts]
        else:
            context = self._row_context(context_id, context_blob, frame.n_features)
            cts = [self._load(blob, i) for i, blob in enumerate(frame.ciphertexts)]
            loaded = time.perf_counter()
            result = [self._row(ct, model, context) for ct in cts]
        computed = time.perf_counter()
        response = encode_response(frame.layout, frame.n_rows, [save_bytes(ct) for ct in result])
        done = time.perf_counter()
        return Evaluation(
            response=response,
            layout=frame.layout,
            n_rows=frame.n_rows,
            load_s=loaded - started,
            kernel_s=computed - loaded,
            save_s=done - computed,
        )

    def _evaluate_set(self, frame: RequestFrame, model: LinearModel, started: float) -> Evaluation:
        """A request in a named parameter set (``compact``, ``precise``): see ``_sets``."""
        if self._set_kernels is None:
            self._set_kernels = SetKernels(self._model_cache_size)
        affine = self._affine.get(model.key)
        if affine is None:
            try:
                affine = model.affine()
            except ValueError as exc:
                raise ShapeMismatch(f"the model's standardisation is unusable: {exc}") from exc
            self._affine.put(model.key, affine)
        parsed = time.perf_counter()
        result = self._set_kernels.evaluate(frame, affine, model.key)
        return Evaluation(
            response=result.response,
            layout=frame.layout,
            n_rows=frame.n_rows,
            load_s=parsed - started + result.load_s,
            kernel_s=result.kernel_s,
            save_s=result.save_s,
        )

    def _row_context(
        self, context_id: str | None, context_blob: bytes | None, n_features: int
    ) -> ServerContext:
        if context_id is None:
            raise ShapeMismatch("the row layout needs an uploaded row-layout context")
        context = self._contexts.get(context_id)
        if context is None:
            if context_blob is None:
                raise ContextNotCached(context_id)
            context = self.add_context(context_blob)
            if context.info.context_id != context_id:
                raise ContextRejected("context bytes do not match the context id")
        period = row_period(n_features)
        if context.info.layout is not Layout.ROW or context.info.row_slots < period:
            raise ShapeMismatch(
                f"{n_features} features need a row-layout context of >= {period} "
                f"slots; this one is {context.info.layout.label} with {context.info.row_slots}"
            )
        return context

    def _load(self, blob: memoryview, index: int) -> Any:
        return load_fresh_ciphertext(
            self._context,
            blob,
            scale_bits=self.params.scale_bits,
            index=index,
            where="these parameters",
        )

    def _encoded(self, model: LinearModel, layout: Layout, period: int) -> list[Any]:
        key = (model.key, layout, period)
        cached = self._models.get(key)
        if cached is not None:
            return cached
        parms_id = self._context.first_parms_id()
        plains: list[Any] = []
        if layout is Layout.COLUMN:
            w = model.weights
            for j in range(0, len(w), 2):
                value = w[j] if j + 1 == len(w) else complex(w[j], -w[j + 1])
                plain = seal.Plaintext()
                self._encoder.encode(value, parms_id, self.params.scale, plain)
                plains.append(plain)
        elif layout is Layout.COEFF:
            slots = coefficients_to_slots(
                reversed_weights(model.weights, self.params.poly_modulus_degree)
            )
            plain = seal.Plaintext()
            self._encoder.encode(slots.tolist(), parms_id, self.params.scale, plain)
            plains.append(plain)
        else:
            weights = np.asarray(model.weights, dtype=np.float64)
            tile = np.zeros(period, dtype=np.complex128)
            evens, odds = weights[0::2], weights[1::2]
            tile[: evens.shape[0]] += evens
            tile[: odds.shape[0]] -= 1j * odds  # conjugate pairs: Re((a+ib)(c-id)) = ac+bd
            plain = seal.Plaintext()
            self._encoder.encode(
                np.tile(tile, self.params.slots // period).tolist(),
                parms_id,
                self.params.scale,
                plain,
            )
            plains.append(plain)
        self._models.put(key, plains)
        return plains

    def _add_bias(self, ct: Any, model: LinearModel) -> None:
        # After the one rescale every layout sits at the same level and scale, so one
        # encoded bias per model serves them all (the scale is part of the key anyway).
        key = (model.key, ct.scale)
        bias = self._biases.get(key)
        if bias is None:
            bias = seal.Plaintext()
            self._encoder.encode(model.intercept, ct.parms_id(), ct.scale, bias)
            self._biases.put(key, bias)
        if not bias.is_zero():
            self._evaluator.add_plain_inplace(ct, bias)

    def _column(self, cts: list[Any], model: LinearModel) -> Any:
        plains = self._encoded(model, Layout.COLUMN, 1)
        terms = []
        for ct, plain in zip(cts, plains, strict=True):
            if plain.is_zero():  # SEAL refuses to make a transparent ciphertext
                continue
            self._evaluator.multiply_plain_inplace(ct, plain)
            terms.append(ct)
        if not terms:
            raise ShapeMismatch("the model's weights are all zero; nothing to evaluate")
        acc = seal.Ciphertext()
        if len(terms) == 1:
            acc = terms[0]
        else:
            self._evaluator.add_many(terms, acc)
        self._evaluator.rescale_to_next_inplace(acc)
        self._add_bias(acc, model)
        return acc

    def _coeff(self, ct: Any, model: LinearModel) -> Any:
        (plain,) = self._encoded(model, Layout.COEFF, 0)
        if plain.is_zero():
            raise ShapeMismatch("the model's weights are all zero; nothing to evaluate")
        self._evaluator.multiply_plain_inplace(ct, plain)
        self._evaluator.rescale_to_next_inplace(ct)
        self._add_bias(ct, model)
        return ct

    def _row(self, ct: Any, model: LinearModel, context: ServerContext) -> Any:
        period = row_period(model.n_features)
        (plain,) = self._encoded(model, Layout.ROW, period)
        if plain.is_zero():
            raise ShapeMismatch("the model's weights are all zero; nothing to evaluate")
        self._evaluator.multiply_plain_inplace(ct, plain)
        self._evaluator.rescale_to_next_inplace(ct)
        rotated = seal.Ciphertext()
        for step in rotation_steps(period):
            self._evaluator.rotate_vector(ct, step, context.galois_keys, rotated)
            self._evaluator.add_inplace(ct, rotated)
        self._add_bias(ct, model)
        return ct
