"""Carry float64 sums exactly through Flower's SecAgg+ quantisation.

Flower's SecAgg+ (1.41, ``secaggplus_mod`` / ``SecAggPlusWorkflow``) clips each value
to `[-c, c]`, maps it to an integer in `[0, T]` by stochastic rounding on the grid
`delta = 2c / T`, masks the integers modulo `M = 2**32`, and returns the weighted mean
`sum_i r_i v_i / sum_i r_i` with `r_i = num_examples_i / max_weight`. A value that is
already on the grid is quantised without rounding, so the sum over nodes of grid
values is exact as long as the integer sums stay below `M`.

This codec writes every float as `K` signed integer digits in base `B = 2**b`
(fixed point from `2**top_exponent` down to about `2**bottom_exponent`) and sends
digit `q` as the grid value `q * delta`. With `num_examples = max_weight` every node
has weight 1, the workflow returns the mean of the grid values, and the server
multiplies by the number of nodes, rounds back to integers, and recombines the
digits: the result is the float64 rounding of the exact sum of the nodes' fixed-point
values. With Flower's default quantisation (`c = 8`, `T = 2**22`) the same sums miss
by about 3e-2 (measured on the Spector data).

Constraints used (n = number of nodes): the per-node quantised value lies in
`[0, T]` and the workflow also sums the per-node factor `T`, so `n * T < M`; we take
`T = 2**t` with `t = 32 - ceil(log2(n + 1))` and `b = t - 2` so that `|q| <= 2**(b-1)`
stays well inside `[-T/2, T/2]`. Stochastic rounding draws `ceil` then subtracts 1
only when a uniform draw is below `ceil(a) - a`, which is 0 for grid values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = ["MODULUS_RANGE", "ExactSumCodec", "SumOverflowError"]

MODULUS_RANGE = 2**32
"""SecAgg+ mask modulus `M` (Flower's default `modulus_range`)."""


class SumOverflowError(ValueError):
    """A value is outside the codec's fixed-point range or not finite."""


@dataclass(frozen=True)
class ExactSumCodec:
    """Fixed-point digit codec for exact secure sums.

    Args:
        n_nodes: number of nodes whose vectors are summed (>= 1).
        top_exponent: values must satisfy `|x| < 2**top_exponent`. Default 48.
        bottom_exponent: resolution is about `2**bottom_exponent` (absolute). Default -64.
    """

    n_nodes: int
    top_exponent: int = 48
    bottom_exponent: int = -64

    def __post_init__(self) -> None:
        if self.n_nodes < 1:
            raise ValueError("n_nodes must be >= 1")
        if self.quantization_bits < 8:
            raise ValueError(f"too many nodes for SecAgg+ with 32-bit masks: {self.n_nodes}")
        if self.top_exponent <= self.bottom_exponent:
            raise ValueError("top_exponent must exceed bottom_exponent")

    @property
    def quantization_bits(self) -> int:
        """T with `T = 2**t` (SecAgg+ `quantization_range`)."""
        return 32 - math.ceil(math.log2(self.n_nodes + 1))

    @property
    def quantization_range(self) -> int:
        """SecAgg+ `quantization_range` T."""
        return 2**self.quantization_bits

    @property
    def clipping_range(self) -> float:
        """SecAgg+ `clipping_range` c (a power of two, so the grid is exact)."""
        return 1.0

    @property
    def digit_bits(self) -> int:
        """b, bits per digit."""
        return self.quantization_bits - 2

    @property
    def n_digits(self) -> int:
        """K, digits per value."""
        return math.ceil((self.top_exponent - self.bottom_exponent) / self.digit_bits)

    def _scales(self) -> FloatArray:
        b = self.digit_bits
        first = self.top_exponent - (b - 1)
        return np.array([2.0 ** (first - k * b) for k in range(self.n_digits)])

    @property
    def grid(self) -> float:
        """Delta = 2c / T, the SecAgg+ quantisation step."""
        return 2.0 * self.clipping_range / self.quantization_range

    def encoded_size(self, n_values: int) -> int:
        """Length of the encoded vector.

        Args:
            n_values: number of floats to encode.

        Returns:
            `n_values * n_digits`.
        """
        return n_values * self.n_digits

    def encode(self, values: FloatArray) -> FloatArray:
        """Split floats into grid-aligned digits.

        Args:
            values: float64 array of shape (n_values,).

        Returns:
            float64 array of shape (n_digits * n_values,), digit-major, each entry a
            multiple of `grid` in `[-c/4, c/4]`.

        Raises:
            SumOverflowError: if a value is not finite or `|x| >= 2**top_exponent`.
        """
        x = np.asarray(values, dtype=np.float64).copy()
        if not np.all(np.isfinite(x)):
            raise SumOverflowError("a value to be summed is not finite")
        limit = 2.0**self.top_exponent
        if np.any(np.abs(x) >= limit):
            raise SumOverflowError(
                f"a value to be summed exceeds 2**{self.top_exponent} "
                f"(max |x| = {float(np.max(np.abs(x))):.3e})"
            )
        digits = []
        for s in self._scales():
            q = np.round(x / s)  # exact: s is a power of two
            x = x - q * s  # exact: the remainder is x's low-order bits
            digits.append(q)
        return (np.concatenate(digits) * self.grid).astype(np.float64)

    def decode_sum(self, encoded_sum: FloatArray) -> FloatArray:
        """Recombine summed digits into float sums.

        Args:
            encoded_sum: float64 array of shape (n_digits * n_values,), the sum over
                nodes of :meth:`encode` outputs (possibly off by float rounding).

        Returns:
            float64 array of shape (n_values,).

        Raises:
            ValueError: if the length is not a multiple of `n_digits`.
        """
        v = np.asarray(encoded_sum, dtype=np.float64)
        if v.ndim != 1 or v.shape[0] % self.n_digits:
            raise ValueError(f"encoded length {v.shape} is not a multiple of {self.n_digits}")
        q = np.round(v / self.grid).reshape(self.n_digits, -1)
        total = np.zeros(q.shape[1])
        # smallest digits first, so large partial sums absorb small ones last
        for k in reversed(range(self.n_digits)):
            total = total + q[k] * self._scales()[k]
        return total

    def decode_mean(self, encoded_mean: FloatArray, n_active: int) -> FloatArray:
        """Decode SecAgg+'s output (the mean over `n_active` unit-weight nodes).

        Args:
            encoded_mean: float64 array, the aggregated parameters from SecAgg+.
            n_active: number of nodes whose vectors were summed.

        Returns:
            float64 array of shape (n_values,), the exact sums.
        """
        return self.decode_sum(np.asarray(encoded_mean, dtype=np.float64) * n_active)
