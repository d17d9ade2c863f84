"""Fixed-point encoding shared by the circuit, the prover and every verifier of a logit proof.

A real number ``v`` becomes the integer ``round(v * 2**s)`` and then a BN254 scalar field element
(a negative integer ``-n`` is the element ``r - n``). Features use ``s = X_SCALE_BITS`` (24), weights
``W_SCALE_BITS`` (32), the intercept and the logit ``LOGIT_SCALE_BITS`` = 24 + 32 = 56, so that
``logit = sum(w_i * x_i) + b`` holds exactly in integers. The circuit checks that every feature fits
``X_BITS`` signed bits (|feature| < 2^24); weights are bounded here (|coefficient| < 2^24), so a
product stays below 2^104 and a sum of a few thousand of them far below r ~ 2^254: nothing wraps.

Precision: raw-unit coefficients of the breast-cancer model span 1e-4 (area, values up to 2,500) to
about 1e2 (smoothness, values near 0.1), so weights need more fractional bits than features; with
these scales the logit error is at most 1.6e-5 on the 569 breast-cancer rows (tests/zk).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Order r of the BN254 (alt_bn128) scalar field, the field circom and the EIP-196/197 precompiles use.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Fractional bits of a feature (2^-24 ~ 6e-8 resolution).
X_SCALE_BITS = 24
#: Fractional bits of a weight (2^-32 ~ 2.3e-10 resolution).
W_SCALE_BITS = 32
#: Fractional bits of the intercept and the logit.
LOGIT_SCALE_BITS = X_SCALE_BITS + W_SCALE_BITS
#: Signed bit width every encoded feature must fit, checked in the circuit (|feature| < 2^24).
X_BITS = 49
#: Largest |encoded weight| accepted (|coefficient| < 2^24), keeping every product far below r.
MAX_ABS_WEIGHT = 1 << (24 + W_SCALE_BITS)


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
    """Features of one row as signed fixed-point integers (scale 2^X_SCALE_BITS).

    Args:
        row: float sequence of shape (n_features,), in the model's feature order.

    Returns:
        Signed integers, one per feature.

    Raises:
        FixedPointRangeError: A feature is not finite or |feature| >= 2^24.
    """
    bound = 1 << (X_BITS - 1)
    return [_encode(float(v), X_SCALE_BITS, bound, f"feature {i}") for i, v in enumerate(row)]


def encode_model(weights: Sequence[float], intercept: float) -> tuple[list[int], int]:
    """A logistic-regression model's parameters in fixed point.

    Args:
        weights: Coefficients, shape (n_features,).
        intercept: The bias b.

    Returns:
        ``(w, b)``: weights at scale 2^W_SCALE_BITS, intercept at scale 2^LOGIT_SCALE_BITS.

    Raises:
        FixedPointRangeError: A parameter is not finite or too large (|coefficient| >= 2^24).
    """
    w = [
        _encode(float(v), W_SCALE_BITS, MAX_ABS_WEIGHT, f"weight {i}")
        for i, v in enumerate(weights)
    ]
    b = _encode(float(intercept), LOGIT_SCALE_BITS, MAX_ABS_WEIGHT << X_SCALE_BITS, "intercept")
    return w, b


def decode_logit(element: int) -> float:
    """The real logit of the circuit's output field element (scale 2^LOGIT_SCALE_BITS)."""
    return from_field(element) / float(1 << LOGIT_SCALE_BITS)


def fixed_logit(w: Sequence[int], b: int, x: Sequence[int]) -> int:
    """The integer logit the circuit computes, ``sum(w_i * x_i) + b`` (scale 2^LOGIT_SCALE_BITS)."""
    return sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b
