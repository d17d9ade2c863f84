"""Named CKKS parameter sets for one-row requests small enough for a phone: ``compact``, ``precise``.

Both use the coefficient layout (``Layout.COEFF``: a row's features are the first polynomial
coefficients, no rotation or relinearization keys) at N = 2048, seeded symmetric encryption up
(the second polynomial travels as a 64-byte PRNG seed) and zstd both ways. The client sends
*standardised* features z_k = (x_k - mean_k) / scale_k (the model card's standardisation), so
that one encoding scale fits every feature; the gateway multiplies by the standardised weight
polynomial W(X) = w_0 - sum_{i>=1} w_i X^(N-i), adds the standardised bias, and coefficient 0
of the answer is the logit w.x + b (see :mod:`ckks._packing`).

``compact``: primes [24, 16, 14]. The gateway rescales by the 16-bit prime, so the answer sits
at the last level (modulo the 24-bit prime alone): 12-13 KB up, 13-15 KB down. Coefficient 0
must stay below half that prime, so the result scale comes from the model's logit bound
L = |b| + R * ||w||_2 over the ball ||z||_2 <= R of standardised rows (R = 32 standard
deviations; the breast-cancer rows reach 20.5): scale_out = 0.98 * q0 / (2 L).

``precise``: one 48-bit prime, no rescale (SEAL has no special prime with one prime, so no
key switching either): 14.2 KB up, 28.1 KB down, logit errors up to about 5e-5 over the input
ball. The product's scale 0.98 * q0 / (2 L) is split between the input (2^20) and the weights.
Measured on the breast-cancer model over 192 rows of its input ball (``bench/he``): one 54-bit
prime (the most N = 2048 allows) gives 1e-5 at 15.6 / 30.9 KB, 48 bits 4.3e-5 at 14.2 / 28.1 KB,
46 bits 9e-5 (too close to the 1e-4 target), 44 bits 4.5e-4; zstd recovers only part of the
unused high bits, so fewer bits save little.

Measured (``shared/FACTS.md``, "CKKS in the browser", and ``bench/he``) over the 569
standardised breast-cancer rows; the figure each subnet states is measured on its own model.
The special prime of ``compact`` (14 bits, SEAL's smallest at N = 2048) is dead weight: nothing
switches keys, but SEAL always reserves the last prime of a longer chain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as seal

from ckks._errors import BatchTooLarge, CiphertextRejected, ShapeMismatch
from ckks._framing import encode_request, parse_response
from ckks._packing import coefficients_to_slots, constant_coefficient
from ckks._params import PARAM_SETS, Layout, ParamSet
from ckks._sealio import ciphertext_to_version, load_into, save_bytes, uncompressed

__all__ = ["AffineModel", "SetClient", "check_standardised", "sets_json"]

_SEAL_ERRORS = (ValueError, RuntimeError, IndexError, OverflowError, TypeError)


@dataclass(frozen=True)
class AffineModel:
    """A logistic-regression model in standardised units, as the parameter sets need it.

    Attributes:
        weights: Standardised weights w_k * scale_k, shape (n_features,).
        intercept: Standardised bias b + sum_k w_k * mean_k.
        mean: The card's feature means (raw units).
        scale: The card's feature scales (raw units, > 0).
    """

    weights: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def from_raw(
        cls,
        weights: Sequence[float],
        intercept: float,
        mean: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
    ) -> AffineModel:
        """Fold a standardisation out of raw-unit coefficients.

        w.x + b = sum_k (w_k s_k) z_k + (b + sum_k w_k m_k) with z_k = (x_k - m_k) / s_k.

        Args:
            weights: Raw-unit coefficients, shape (n_features,).
            intercept: Raw-unit intercept.
            mean: Feature means (None: zeros).
            scale: Feature scales (None: ones); must be positive and finite.

        Returns:
            The model.

        Raises:
            ValueError: Lengths differ, or a scale is not positive and finite.
        """
        w = np.asarray(weights, dtype=np.float64)
        m = np.zeros_like(w) if mean is None else np.asarray(mean, dtype=np.float64)
        s = np.ones_like(w) if scale is None else np.asarray(scale, dtype=np.float64)
        if m.shape != w.shape or s.shape != w.shape:
            raise ValueError("standardisation lengths differ from the weights'")
        if not (np.isfinite(s).all() and (s > 0).all() and np.isfinite(m).all()):
            raise ValueError("standardisation scales must be positive and finite")
        return cls(
            tuple((w * s).tolist()),
            float(intercept + w @ m),
            tuple(m.tolist()),
            tuple(s.tolist()),
        )

    def logit_bound(self, input_bound: float) -> float:
        """L = |b| + R * ||w||_2: the largest |logit| over the ball ||z||_2 <= R."""
        return abs(self.intercept) + input_bound * float(np.linalg.norm(self.weights))

    def standardise(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Z = (x - mean) / scale, shape (n_rows, n_features)."""
        return (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)

    def standardisation_json(self) -> dict[str, list[float]]:
        """``{"mean": [...], "scale": [...]}`` as the subnet JSON states it."""
        return {"mean": list(self.mean), "scale": list(self.scale)}


def check_standardised(z: npt.NDArray[np.float64], pset: ParamSet) -> None:
    """Refuse rows outside the set's input ball (their logits could wrap around).

    Args:
        z: Standardised rows, shape (n_rows, n_features).
        pset: The set.

    Raises:
        ShapeMismatch: Non-finite values, or a row with ||z||_2 > ``pset.input_bound``.
    """
    if not np.isfinite(z).all():
        raise ShapeMismatch("x has non-finite values")
    norms = np.linalg.norm(z, axis=1)
    if norms.max(initial=0.0) > pset.input_bound:
        row = int(norms.argmax())
        raise ShapeMismatch(
            f"row {row} lies {norms[row]:.3g} standard deviations from the mean; "
            f"the {pset.name} set takes rows within {pset.input_bound:g}"
        )


class SetClient:
    """A caller's secret key for one parameter set: encrypts standardised rows, decrypts logits.

    The secret key never leaves this object (nothing is uploaded: the coefficient layout
    needs no evaluation keys).

    Args:
        pset: The parameter set.
        seal_minor: SEAL serialization version to send (3 as TenSEAL writes; 1 as node-seal
            7 does: tests use it to act as a browser).
    """

    def __init__(self, pset: ParamSet, *, seal_minor: int = 3) -> None:
        self.pset = pset
        self.seal_minor = seal_minor
        self._context = pset.context()
        keygen = seal.KeyGenerator(self._context)
        self._secret_key = keygen.secret_key()
        self._encoder = seal.CKKSEncoder(self._context)
        self._encryptor = seal.Encryptor(self._context, self._secret_key)
        self._decryptor = seal.Decryptor(self._context, self._secret_key)

    def encrypt_ciphertext(self, z_row: npt.NDArray[np.float64]) -> bytes:
        """One standardised row as a seeded, zstd SEAL ciphertext (in ``seal_minor``).

        Args:
            z_row: float array of shape (n_features,), n_features <= N.

        Returns:
            The serialized ciphertext.
        """
        n = self.pset.poly_modulus_degree
        coefficients = np.zeros(n)
        coefficients[: z_row.shape[0]] = z_row
        plain = seal.Plaintext()
        self._encoder.encode(
            coefficients_to_slots(coefficients).tolist(),
            self._context.first_parms_id(),
            self.pset.input_scale,
            plain,
        )
        blob = save_bytes(self._encryptor.encrypt_symmetric(plain))
        if self.seal_minor != 3:
            blob = ciphertext_to_version(blob, self.seal_minor, compress=True)
        return blob

    def encrypt(self, z: npt.ArrayLike, *, check: bool = True) -> bytes:
        """Encrypt standardised rows into a request frame for this set.

        Args:
            z: float array of shape (n_rows, n_features), standardised with the subnet's
                ``feature_standardisation``, columns in its feature order.
            check: Refuse rows outside the set's input ball (tests turn it off).

        Returns:
            The body for ``POST /v1/subnets/{id}/infer``.

        Raises:
            ShapeMismatch: Not 2-D, too wide, non-finite or outside the box.
            BatchTooLarge: More than 64 rows (the gateway's bound per request).
        """
        rows = np.asarray(z, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
            raise ShapeMismatch(f"z must have shape (n_rows, n_features), got {rows.shape}")
        if rows.shape[1] > self.pset.poly_modulus_degree:
            raise ShapeMismatch(
                f"{rows.shape[1]} features exceed N={self.pset.poly_modulus_degree}"
            )
        if rows.shape[0] > 64:
            raise BatchTooLarge(f"{rows.shape[0]} rows exceed 64 per request; split the batch")
        if check:
            check_standardised(rows, self.pset)
        cts = [self.encrypt_ciphertext(row) for row in rows]
        return encode_request(
            Layout.COEFF, rows.shape[0], rows.shape[1], cts, param_set=self.pset.set_id
        )

    def decrypt_ciphertext(self, blob: bytes | memoryview) -> float:
        """The logit in coefficient 0 of one answer ciphertext.

        Raises:
            CiphertextRejected: SEAL refuses it.
        """
        try:
            if self.seal_minor != 3:
                blob = ciphertext_to_version(blob, 3, compress=False)
            ct = load_into(seal.Ciphertext(), self._context, uncompressed(bytes(blob)))
            plain = seal.Plaintext()
            self._decryptor.decrypt(ct, plain)
            return constant_coefficient(self._encoder.decode_double(plain))
        except _SEAL_ERRORS as exc:
            raise CiphertextRejected(f"answer ciphertext does not decrypt: {exc}") from exc

    def decrypt_logits(
        self, response: bytes, expected_rows: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Decrypt a response frame into logits.

        Args:
            response: The body of ``POST /v1/subnets/{id}/infer``.
            expected_rows: If given, the row count it must carry.

        Returns:
            float64 array of shape (n_rows,): w.x + b.

        Raises:
            FramingError: Malformed frame.
            CiphertextRejected: Wrong set, row count, or a ciphertext that does not decrypt.
        """
        frame = parse_response(response)
        if frame.param_set != self.pset.set_id or frame.layout is not Layout.COEFF:
            raise CiphertextRejected(
                f"the answer is for parameter set {frame.param_set}, not {self.pset.name}"
            )
        if expected_rows is not None and frame.n_rows != expected_rows:
            raise CiphertextRejected(f"response has {frame.n_rows} rows, expected {expected_rows}")
        return np.array([self.decrypt_ciphertext(blob) for blob in frame.ciphertexts])


def sets_json(model: AffineModel | None, errors: Mapping[str, float | None]) -> dict[str, Any]:
    """The ``ckks_parameter_sets`` object of ``GET /v1/subnets/{id}``.

    Args:
        model: The served model in standardised form (None: nothing served yet).
        errors: Set name -> measured max |logit error| on that model (None: not measured).

    Returns:
        Set name -> the set's JSON plus ``logit_bound``, ``answer_scale`` and
        ``max_abs_logit_error`` (null without a model).
    """
    out: dict[str, Any] = {}
    for name, pset in PARAM_SETS.items():
        body = pset.to_dict()
        if model is None:
            body.update(logit_bound=None, answer_scale=None, max_abs_logit_error=None)
        else:
            bound = model.logit_bound(pset.input_bound)
            _, answer = pset.scales(bound)
            body.update(
                logit_bound=bound,
                answer_scale=answer,
                answer_scale_bits=round(math.log2(answer), 3),
                max_abs_logit_error=errors.get(name),
            )
        out[name] = body
    return out
