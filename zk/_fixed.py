"""Fixed-point encoding shared by the circuit, the prover and every verifier of a logit proof.

A real number ``v`` becomes the integer ``round(v * 2**s)`` and then a BN254 scalar field element
(a negative integer ``-n`` is the element ``r - n``). Features and weights use ``s = SCALE_BITS``; the
intercept and the logit use ``2 * SCALE_BITS`` so that ``logit = sum(w_i * x_i) + b`` holds exactly in
integers. The circuit checks that every feature fits ``X_BITS`` signed bits, so with weights below
``2**40`` no product or sum can wrap around the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Order r of the BN254 (alt_bn128) scalar field, the field circom and the EIP-196/197 precompiles use.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Fractional bits of a feature or a weight (2^-16 ~ 1.5e-5 resolution).
SCALE_BITS = 16
#: Signed bit width every encoded feature must fit (so |feature| < 2^(X_BITS - 1 - SCALE_BITS) = 2^24).
X_BITS = 41
#: Largest |encoded weight| accepted (|coefficient| < 2^24), keeping every product far below r.
MAX_ABS_WEIGHT = 1 << 40


class FixedPointRangeError(ValueError):
    """A value is not finite or does not fit the fixed-point range the circuit checks."""


def to_field(value: int) -> int:
    """The field element of a signed integer (``value mod r``)."""
    return value % FIELD_MODULUS


def from_field(element: int) -> int:
    """The signed integer of a field element (elements above r/2 are negative).

    Raises:
        FixedPointRangeError: ``element`` is not in [0, r).
    """
    if not 0 <= element < FIELD_MODULUS:
        raise FixedPointRangeError("not a BN254 scalar field element")
    return element - FIELD_MODULUS if element > FIELD_MODULUS // 2 else element


def _encode(value: float, scale_bits: int, bound: int, what: str) -> int:
    if not math.isfinite(value):
        raise FixedPointRangeError(f"{what} is not finite")
    encoded = round(value * (1 << scale_bits))
    if abs(encoded) >= bound:
        raise FixedPointRangeError(
            f"{what} = {value} is outside the proof's fixed-point range "
            f"(|value| < {bound / (1 << scale_bits):g})"
        )
    return encoded


def encode_features(row: Sequence[float]) -> list[int]:
    """Features of one row as signed fixed-point integers (scale 2^SCALE_BITS).

    Args:
        row: float sequence of shape (n_features,), in the model's feature order.

    Returns:
        Signed integers, one per feature.

    Raises:
        FixedPointRangeError: A feature is not finite or |feature| >= 2^24.
    """
    bound = 1 << (X_BITS - 1)
    return [_encode(float(v), SCALE_BITS, bound, f"feature {i}") for i, v in enumerate(row)]


def encode_model(weights: Sequence[float], intercept: float) -> tuple[list[int], int]:
    """A logistic-regression model's parameters in fixed point.

    Args:
        weights: Coefficients, shape (n_features,).
        intercept: The bias b.

    Returns:
        ``(w, b)``: weights at scale 2^SCALE_BITS, intercept at scale 2^(2 * SCALE_BITS).

    Raises:
        FixedPointRangeError: A parameter is not finite or too large (|coefficient| >= 2^24).
    """
    w = [
        _encode(float(v), SCALE_BITS, MAX_ABS_WEIGHT, f"weight {i}") for i, v in enumerate(weights)
    ]
    b = _encode(float(intercept), 2 * SCALE_BITS, MAX_ABS_WEIGHT << SCALE_BITS, "intercept")
    return w, b


def decode_logit(element: int) -> float:
    """The real logit of the circuit's output field element (scale 2^(2 * SCALE_BITS))."""
    return from_field(element) / float(1 << (2 * SCALE_BITS))


def fixed_logit(w: Sequence[int], b: int, x: Sequence[int]) -> int:
    """The integer logit the circuit computes, ``sum(w_i * x_i) + b`` (scale 2^(2 * SCALE_BITS))."""
    return sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b
