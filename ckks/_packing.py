"""Coefficient packing for the ``COEFF`` layout.

SEAL's CKKS encoder maps slot j to the root psi^(3^j mod 2N) of X^N + 1, with
psi = exp(i pi / N) (SEAL ``CKKSEncoder``: ``matrix_reps_index_map_`` built from the
generator 3). To make a plaintext whose *coefficients* are c, encode the slot values
z_j = c(psi^(3^j)); these are one length-N FFT: c(psi^(2m+1)) = N * ifft(c * psi^i)[m].

The constant coefficient of a polynomial is the mean of its values over all 2N-th
primitive roots, and the roots come in conjugate pairs, so it equals
(2/N) * sum_j Re z_j over the N/2 slots.

In Z[X]/(X^N + 1), X^-i = -X^(N-i); so with x(X) = sum x_i X^i and
w(X) = w_0 - sum_{i>=1} w_i X^(N-i), the constant coefficient of x(X) w(X) is w.x.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

__all__ = ["coefficients_to_slots", "constant_coefficient", "reversed_weights"]


@functools.lru_cache(maxsize=4)
def _tables(n: int) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.int64]]:
    twist = np.exp(1j * np.pi * np.arange(n) / n)
    generator_powers = np.array([pow(3, j, 2 * n) for j in range(n // 2)], dtype=np.int64)
    return twist, (generator_powers - 1) // 2


def coefficients_to_slots(coefficients: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
    """Slot values whose CKKS encoding has the given polynomial coefficients.

    Args:
        coefficients: float array of shape (N,), N a power of two.

    Returns:
        complex array of shape (N/2,), in SEAL's slot order.
    """
    n = coefficients.shape[0]
    twist, index = _tables(n)
    values = n * np.fft.ifft(coefficients * twist)
    return np.asarray(values[index], dtype=np.complex128)


def constant_coefficient(slot_real_parts: npt.ArrayLike) -> float:
    """The constant coefficient of a polynomial from the real parts of its N/2 slots.

    Args:
        slot_real_parts: float array of shape (N/2,), as SEAL's ``decode_double`` gives.

    Returns:
        (2/N) * sum of the real parts.
    """
    values = np.asarray(slot_real_parts, dtype=np.float64)
    return float(values.sum() / values.shape[0])


def reversed_weights(weights: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    """Coefficients of w(X) = w_0 - sum_{i>=1} w_i X^(N-i) (see the module doc).

    Args:
        weights: float array of shape (n_features,), n_features <= N.
        n: The ring degree N.

    Returns:
        float array of shape (N,).
    """
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros(n)
    out[0] = w[0]
    if w.shape[0] > 1:
        out[n - w.shape[0] + 1 :] = -w[1:][::-1]
    return out
