"""The client side of encrypted inference: keys, encryption in both layouts, decryption.

The client keeps the secret key and encrypts symmetrically (SEAL's
``Encryptor.encrypt_symmetric``). Ciphertexts travel in one of two :class:`Wire` forms:
``FAST`` (the default) sends both polynomials uncompressed, 262 KB per N = 8192
ciphertext, which the gateway loads in about 0.15 ms; ``COMPACT`` lets SEAL serialize
the ciphertext *seeded* (the second polynomial replaced by the PRNG seed it was drawn
from) and zstd-compressed, 115 KB, but the gateway spends about 0.55 ms re-expanding it.
The column layout packs two features per ciphertext, as the real and imaginary parts of
the slots, so 15 ciphertexts carry 4096 rows of 30 features: 0.96 KB per prediction
``FAST``, 0.42 KB ``COMPACT``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as seal

from ckks._errors import (
    BatchTooLarge,
    CiphertextRejected,
    ContextRejected,
    ShapeMismatch,
)
from ckks._framing import (
    ContextFrame,
    Section,
    encode_context,
    encode_request,
    parse_context,
    parse_response,
)
from ckks._packing import coefficients_to_slots, constant_coefficient
from ckks._params import DEFAULT_PARAMS, CkksParams, Layout, seal_context
from ckks._sealio import load_into, save_bytes, uncompressed

__all__ = [
    "ClientContext",
    "Wire",
    "galois_element",
    "next_pow2",
    "rotation_steps",
    "row_period",
    "sigmoid",
]

_SEAL_ERRORS = (ValueError, RuntimeError, IndexError, OverflowError, TypeError)


class Wire(enum.Enum):
    """How a request's ciphertexts are serialized: upload bytes against gateway time.

    Both are SEAL's own serialization, which the gateway loads and validates with SEAL;
    they differ only in SEAL's seed and compression options. Figures for N = 8192 at the
    top level, measured on the reference machine (``bench/he``).
    """

    FAST = "fast"
    """Both polynomials, no compression: 262 KB per ciphertext, about 0.15 ms to load."""
    COMPACT = "compact"
    """Seeded and zstd-compressed: 115 KB per ciphertext, about 0.55 ms to load."""


def next_pow2(n: int) -> int:
    """Smallest power of two >= ``n`` (1 for ``n <= 1``).

    Args:
        n: A positive count.

    Returns:
        The power of two.
    """
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def row_period(n_features: int) -> int:
    """Slots one row takes in the row layout: features are paired into complex slots.

    Args:
        n_features: Features per row.

    Returns:
        ``next_pow2(ceil(n_features / 2))``; the row is tiled with this period.
    """
    return next_pow2((n_features + 1) // 2)


def _pairs(values: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
    """(v0 + i v1, v2 + i v3, ...) of a 1-D array; odd lengths end with a real value."""
    out = np.zeros((values.shape[0] + 1) // 2, dtype=np.complex128)
    out += values[0::2]
    out[: values[1::2].shape[0]] += 1j * values[1::2]
    return out


def rotation_steps(row_slots: int) -> list[int]:
    """Rotation steps a rotate-and-sum over ``row_slots`` slots uses: 1, 2, 4, ... < row_slots.

    Args:
        row_slots: A power of two.

    Returns:
        The steps in increasing order (empty for ``row_slots == 1``).
    """
    return [1 << i for i in range(row_slots.bit_length() - 1)]


def galois_element(step: int, poly_modulus_degree: int) -> int:
    """The Galois element SEAL uses to rotate CKKS slots left by ``step`` (``step > 0``).

    Source: SEAL ``GaloisTool::get_elt_from_step``: 3^step mod 2N.

    Args:
        step: Positive rotation step, below N/2.
        poly_modulus_degree: N.

    Returns:
        The Galois element.
    """
    return pow(3, step, 2 * poly_modulus_degree)


def sigmoid(logits: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Logistic function, numerically stable for large |z|.

    Args:
        logits: Array of logits.

    Returns:
        Probabilities 1 / (1 + exp(-z)), same shape.
    """
    z = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class ClientContext:
    """A caller's CKKS keys: encrypts features and decrypts logits; never leaves the client.

    Make one with :meth:`create`, upload :meth:`public_bytes` once (its id is
    :attr:`context_id`), keep :meth:`to_bytes` (it holds the secret key) to reuse it.
    """

    def __init__(
        self,
        params: CkksParams,
        layout: Layout,
        row_slots: int,
        secret_key: Any,
        public_sections: Sequence[tuple[Section, bytes]],
    ) -> None:
        self.params = params
        self.layout = layout
        self.row_slots = row_slots
        self._context = seal_context(params)
        self._secret_key = secret_key
        self._public_sections = list(public_sections)
        self._public_bytes = encode_context(layout, row_slots, public_sections)
        self._encoder = seal.CKKSEncoder(self._context)
        self._encryptor = seal.Encryptor(self._context, secret_key)
        self._decryptor = seal.Decryptor(self._context, secret_key)

    @classmethod
    def create(
        cls,
        params: CkksParams = DEFAULT_PARAMS,
        *,
        layout: Layout = Layout.COLUMN,
        n_features: int | None = None,
    ) -> ClientContext:
        """Generate fresh keys.

        Args:
            params: The subnet's advertised parameters (checked here).
            layout: ``COLUMN`` and ``COEFF`` need no evaluation keys; ``ROW`` adds Galois
                keys for the rotation steps 1, 2, 4, ... < ``row_period(n_features)`` only.
            n_features: Features per row; required for the row layout.

        Returns:
            The context.

        Raises:
            InsecureParameters: If ``params`` fail the checks.
            ShapeMismatch: Row layout without a valid ``n_features``.
        """
        params.check()
        context = seal_context(params)
        keygen = seal.KeyGenerator(context)
        secret_key = keygen.secret_key()
        sections = [(Section.PARAMETERS, save_bytes(context.key_context_data().parms()))]
        row_slots = 0
        if layout is Layout.ROW:
            n = params.poly_modulus_degree
            if n_features is None or not 1 <= n_features <= n:
                raise ShapeMismatch(f"row layout needs 1..{n} features, got {n_features}")
            row_slots = row_period(n_features)
            steps = rotation_steps(row_slots)
            if steps:
                # Pass Galois elements: pybind picks the uint32 (element) overload first.
                elements = [galois_element(s, params.poly_modulus_degree) for s in steps]
                keys = keygen.create_galois_keys(elements)
                sections.append((Section.GALOIS_KEYS, save_bytes(keys)))
        return cls(params, layout, row_slots, secret_key, sections)

    @classmethod
    def from_bytes(cls, data: bytes, params: CkksParams = DEFAULT_PARAMS) -> ClientContext:
        """Load a context saved with :meth:`to_bytes`.

        Args:
            data: The private context bytes.
            params: The parameters it must have been made with.

        Returns:
            The context.

        Raises:
            FramingError: Malformed bytes.
            ContextRejected: No secret key, or SEAL refuses a section for ``params``.
        """
        frame: ContextFrame = parse_context(data)
        if Section.SECRET_KEY not in frame.sections:
            raise ContextRejected("the context carries no secret key")
        context = seal_context(params)
        try:
            secret_key = load_into(seal.SecretKey(), context, frame.sections[Section.SECRET_KEY])
        except _SEAL_ERRORS as exc:
            raise ContextRejected(f"secret key does not load for these parameters: {exc}") from exc
        public = [(k, bytes(v)) for k, v in frame.sections.items() if k is not Section.SECRET_KEY]
        return cls(params, frame.layout, frame.row_slots, secret_key, public)

    def to_bytes(self) -> bytes:
        """The private context, secret key included: keep it like a password.

        Returns:
            A context frame whose sections are the public ones plus the secret key.
        """
        secret = (Section.SECRET_KEY, save_bytes(self._secret_key))
        return encode_context(self.layout, self.row_slots, [*self._public_sections, secret])

    def public_bytes(self) -> bytes:
        """The public context to upload: parameters and, for rows, the needed Galois keys.

        Returns:
            The context frame (about 100 B for columns, about 2 MB for 32-slot rows).
        """
        return self._public_bytes

    @property
    def context_id(self) -> str:
        """sha256 (hex) of :meth:`public_bytes`, the id the gateway answers with."""
        return hashlib.sha256(self._public_bytes).hexdigest()

    def _encrypt_vector(
        self, values: npt.NDArray[np.float64] | npt.NDArray[np.complex128], wire: Wire
    ) -> bytes:
        plain = seal.Plaintext()
        try:
            self._encoder.encode(
                values.tolist(), self._context.first_parms_id(), self.params.scale, plain
            )
        except _SEAL_ERRORS as exc:
            raise ShapeMismatch(f"x has values too large to encode: {exc}") from exc
        if wire is Wire.COMPACT:  # a Serializable: SEAL saves the seed, not the polynomial
            return save_bytes(self._encryptor.encrypt_symmetric(plain))
        ct = seal.Ciphertext()
        self._encryptor.encrypt_symmetric(plain, ct)
        return uncompressed(save_bytes(ct))

    def encrypt(
        self, x: npt.ArrayLike, layout: Layout | None = None, *, wire: Wire = Wire.FAST
    ) -> bytes:
        """Encrypt rows of features into a request frame.

        Args:
            x: float array of shape (n_rows, n_features), columns in the subnet's feature
                order.
            layout: Defaults to the context's layout; ``ROW`` needs a row context wide
                enough for ``n_features``; ``COLUMN`` and ``COEFF`` work with any context.
            wire: ``FAST`` (uncompressed, quickest for the gateway to load) or
                ``COMPACT`` (seeded and compressed: 44 % of the bytes, about 0.4 ms more
                gateway time per ciphertext); see :class:`Wire`.

        Returns:
            The request body for ``POST /v1/subnets/{id}/infer``.

        Raises:
            ShapeMismatch: ``x`` is not 2-D, has non-finite or too large values (keep
                |x| and |w.x + b| below 2^19 with the default parameters), or is too wide.
            BatchTooLarge: More rows than N/2 in the column layout (split the batch).
        """
        layout = self.layout if layout is None else layout
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
            raise ShapeMismatch(f"x must have shape (n_rows, n_features), got {rows.shape}")
        if not np.isfinite(rows).all():
            raise ShapeMismatch("x has non-finite values")
        n_rows, n_features = rows.shape
        slots = self.params.slots
        if layout is Layout.COLUMN:
            if n_rows > slots:
                raise BatchTooLarge(f"{n_rows} rows exceed the {slots} slots; split the batch")
            cts = []
            for j in range(0, n_features, 2):
                pair = rows[:, j] if j + 1 == n_features else rows[:, j] + 1j * rows[:, j + 1]
                cts.append(self._encrypt_vector(pair, wire))
        elif layout is Layout.COEFF:
            n = self.params.poly_modulus_degree
            if n_features > n:
                raise ShapeMismatch(f"{n_features} features exceed the {n} coefficients")
            cts = []
            for row in rows:
                coefficients = np.zeros(n)
                coefficients[:n_features] = row
                cts.append(self._encrypt_vector(coefficients_to_slots(coefficients), wire))
        else:
            period = row_period(n_features)
            if self.layout is not Layout.ROW or period > self.row_slots:
                raise ShapeMismatch(
                    f"row layout with {n_features} features needs a row context of "
                    f">= {period} slots"
                )
            cts = []
            for row in rows:
                tile = np.zeros(period, dtype=np.complex128)
                tile[: (n_features + 1) // 2] = _pairs(row)
                cts.append(self._encrypt_vector(np.tile(tile, slots // period), wire))
        return encode_request(layout, n_rows, n_features, cts)

    def decrypt_logits(
        self, response: bytes, expected_rows: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Decrypt a response frame into logits.

        Args:
            response: The body returned by ``POST /v1/subnets/{id}/infer``.
            expected_rows: If given, the row count the response must carry.

        Returns:
            float64 array of shape (n_rows,): the logits w.x + b; apply :func:`sigmoid`.

        Raises:
            FramingError: Malformed response.
            CiphertextRejected: A ciphertext SEAL refuses or the wrong row count.
        """
        frame = parse_response(response)
        if expected_rows is not None and frame.n_rows != expected_rows:
            raise CiphertextRejected(f"response has {frame.n_rows} rows, expected {expected_rows}")
        logits = np.empty(frame.n_rows)
        for i, blob in enumerate(frame.ciphertexts):
            try:
                ct = load_into(seal.Ciphertext(), self._context, blob)
                plain = seal.Plaintext()
                self._decryptor.decrypt(ct, plain)
                values = self._encoder.decode_double(plain)
            except _SEAL_ERRORS as exc:
                raise CiphertextRejected(
                    f"response ciphertext {i} does not decrypt: {exc}"
                ) from exc
            if frame.layout is Layout.COLUMN:
                logits[:] = values[: frame.n_rows]
            elif frame.layout is Layout.COEFF:
                logits[i] = constant_coefficient(values)
            else:
                logits[i] = values[0]
        return logits
