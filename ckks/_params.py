"""CKKS parameters: the advertised set, its security and precision checks, SEAL contexts.

Security is checked against the HomomorphicEncryption.org standard table (Albrecht et
al., "Homomorphic Encryption Security Standard", 2018, table for classical 128-bit
security with a ternary secret), as implemented by SEAL's
``CoeffModulus.MaxBitCount(N, sec_level_type.tc128)``: for N = 8192 the total
coefficient-modulus size may be at most 218 bits; the default [60, 40, 60] uses 160.

Precision rule: the scale must equal the size of every rescale prime (the middle
primes), so that a rescale divides the scale back to 2^scale_bits; TenSEAL's tutorial
set (N = 4096, [40, 20, 40], 2^20 with a 20-bit rescale prime) gives logit errors near 1.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tenseal.sealapi as seal

from ckks._errors import InsecureParameters
from ckks._sealio import SEAL_MINOR_VERSIONS

__all__ = [
    "COMPACT",
    "DEFAULT_PARAMS",
    "PARAM_SETS",
    "PRECISE",
    "CkksParams",
    "Layout",
    "ParamSet",
    "param_set_by_id",
    "param_set_by_name",
]

_MIN_SCALE_BITS = 30
"""Smallest scale giving logits to 1e-4: rounding errors are about 2^-scale_bits per term."""

_MIN_HEADROOM_BITS = 10
"""Bits the first prime must exceed the scale by: room for |logit| < 2^(headroom - 1)."""


class Layout(enum.IntEnum):
    """How rows are packed into ciphertexts.

    ``ROW``: one row per ciphertext, features paired into complex slots
    (x0 + i x1, x2 + i x3, ...) and tiled with period p = next_pow2(ceil(n_features / 2));
    the gateway sums p slots with rotations by 1, 2, ..., p/2, so the context carries
    Galois keys for those steps only.
    ``COLUMN``: one ciphertext per pair of features (real and imaginary parts of the
    slots), holding up to N/2 rows; no evaluation keys.
    ``COEFF``: one row per ciphertext with the features as *polynomial coefficients*
    (up to N of them); one plaintext multiply by the reversed weight polynomial puts
    w.x in the constant coefficient, so no rotations and no evaluation keys at all.
    """

    ROW = 1
    COLUMN = 2
    COEFF = 3

    @property
    def one_row_per_ciphertext(self) -> bool:
        """True for ``ROW`` and ``COEFF``."""
        return self is not Layout.COLUMN

    @property
    def label(self) -> str:
        """The name used in JSON and on the command line (``"row"``, ``"column"``, ``"coeff"``)."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Layout:
        """Parse ``"row"``, ``"column"`` or ``"coeff"``.

        Args:
            label: The layout name.

        Returns:
            The layout.

        Raises:
            ValueError: For any other name.
        """
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(
                f"unknown layout {label!r}; expected 'row', 'column' or 'coeff'"
            ) from None


@dataclass(frozen=True)
class CkksParams:
    """A CKKS parameter set as advertised by a subnet.

    Attributes:
        poly_modulus_degree: Ring degree N (power of two); a ciphertext holds N/2 slots.
        coeff_mod_bit_sizes: Bit sizes of the coefficient-modulus primes, the last one
            being SEAL's special prime for key switching.
        scale_bits: log2 of the encoding scale; equals every middle (rescale) prime's size.
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    scale_bits: int = 40

    @property
    def slots(self) -> int:
        """Number of CKKS slots per ciphertext, N/2."""
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        """The encoding scale, 2^scale_bits."""
        return float(2**self.scale_bits)

    @property
    def total_bits(self) -> int:
        """Total coefficient-modulus size in bits (including the special prime)."""
        return sum(self.coeff_mod_bit_sizes)

    def max_bits_128(self) -> int:
        """Largest total modulus size for 128-bit security at this N (HE standard table).

        Returns:
            SEAL's ``CoeffModulus.MaxBitCount(N, tc128)``; 0 for an unsupported N.
        """
        return int(
            seal.CoeffModulus.MaxBitCount(self.poly_modulus_degree, seal.SEC_LEVEL_TYPE.TC128)
        )

    def check(self) -> None:
        """Check 128-bit security, the precision rule and that SEAL accepts the set.

        Raises:
            InsecureParameters: With a one-line reason.
        """
        n = self.poly_modulus_degree
        bits = self.coeff_mod_bit_sizes
        if n < 1024 or n > 32768 or n & (n - 1):
            raise InsecureParameters(
                f"poly_modulus_degree {n} is not a power of two in [1024, 32768]"
            )
        if len(bits) < 3:
            raise InsecureParameters("need at least three primes: data, one rescale, special")
        max_bits = self.max_bits_128()
        if self.total_bits > max_bits:
            raise InsecureParameters(
                f"coefficient modulus of {self.total_bits} bits exceeds the {max_bits} bits "
                f"allowed for 128-bit security at N={n}"
            )
        if self.scale_bits < _MIN_SCALE_BITS:
            raise InsecureParameters(
                f"scale 2^{self.scale_bits} is below 2^{_MIN_SCALE_BITS}: logits would be inaccurate"
            )
        if any(b != self.scale_bits for b in bits[1:-1]):
            raise InsecureParameters(
                f"scale 2^{self.scale_bits} must equal every rescale prime ({list(bits[1:-1])} bits)"
            )
        if bits[0] < self.scale_bits + _MIN_HEADROOM_BITS:
            raise InsecureParameters(
                f"first prime of {bits[0]} bits leaves under {_MIN_HEADROOM_BITS} bits above the scale"
            )
        try:
            context = seal_context(self)
        except (ValueError, RuntimeError) as exc:
            raise InsecureParameters(f"SEAL refuses the parameters: {exc}") from exc
        if not context.parameters_set():
            raise InsecureParameters(
                f"SEAL refuses the parameters: {context.parameters_error_message()}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form advertised by ``GET /v1/subnets/{id}``.

        Returns:
            ``{"scheme", "poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits",
            "security_bits", "slots", "layouts"}``.
        """
        return {
            "layouts": [layout.label for layout in Layout],
            "scheme": "ckks",
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "scale_bits": self.scale_bits,
            "security_bits": 128,
            "slots": self.slots,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CkksParams:
        """Parse and check the JSON form made by :meth:`to_dict`.

        Args:
            data: The mapping; unknown keys are ignored.

        Returns:
            The checked parameters.

        Raises:
            InsecureParameters: If fields are missing, mistyped, or fail :meth:`check`.
        """
        try:
            if data.get("scheme", "ckks") != "ckks":
                raise InsecureParameters(f"scheme {data.get('scheme')!r} is not 'ckks'")
            n = data["poly_modulus_degree"]
            bits = data["coeff_mod_bit_sizes"]
            scale_bits = data["scale_bits"]
        except (KeyError, AttributeError, TypeError) as exc:
            raise InsecureParameters(f"CKKS parameters incomplete: {exc}") from exc
        if not (
            isinstance(n, int)
            and isinstance(scale_bits, int)
            and isinstance(bits, list | tuple)
            and all(isinstance(b, int) and not isinstance(b, bool) and 0 < b <= 60 for b in bits)
        ):
            raise InsecureParameters("CKKS parameters have wrong types")
        params = cls(n, tuple(bits), scale_bits)
        params.check()
        return params

    def coeff_modulus_values(self) -> list[int]:
        """The primes SEAL picks for these sizes (deterministic).

        Returns:
            The coefficient-modulus primes, special prime last.
        """
        return [
            int(m.value()) for m in seal_context(self).key_context_data().parms().coeff_modulus()
        ]


@functools.lru_cache(maxsize=4)
def seal_context(params: CkksParams) -> Any:
    """The SEAL context for a parameter set (cached; at most 4 sets per process).

    Args:
        params: The parameters.

    Returns:
        A ``tenseal.sealapi.SEALContext`` with key switching enabled and tc128 enforced.

    Raises:
        ValueError: If SEAL refuses the parameters outright.
    """
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus(
        seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_mod_bit_sizes))
    )
    return seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)


def seal_parameters(params: CkksParams) -> Any:
    """The SEAL ``EncryptionParameters`` of a parameter set.

    Args:
        params: The parameters.

    Returns:
        The ``tenseal.sealapi.EncryptionParameters`` held by the cached context.
    """
    return seal_context(params).key_context_data().parms()


DEFAULT_PARAMS = CkksParams()
"""N = 8192, [60, 40, 60], scale 2^40: 160 of 218 allowed bits, one rescale."""


# ---------------------------------------------------------------------------- named sets

HEADROOM = 0.98
"""Fraction of half the answer's prime that the largest logit may use (the rest is noise room)."""
MIN_LOGIT_BOUND = 1.0
"""Smallest logit bound the scales are chosen for. SEAL refuses a scale that is not below the
modulus of its level (``scale out of bounds``), and the answer scale HEADROOM * q0 / (2 L)
reaches q0 once L < HEADROOM / 2: a model with small weights (L below 1) is evaluated at the
scales of L = 1, its answer then uses less of q0 and its absolute error is that of L = 1."""


@dataclass(frozen=True)
class ParamSet:
    """A named CKKS parameter set for one-row coefficient-layout requests.

    Attributes:
        name: ``"compact"`` or ``"precise"`` (the JSON key in ``GET /v1/subnets/{id}``).
        set_id: Its byte in the request and response frames (1, 2; 0 is the subnet's
            default N = 8192 parameters).
        poly_modulus_degree: Ring degree N.
        coeff_mod_bit_sizes: Prime sizes in bits; with more than one, the last is SEAL's
            special prime.
        input_scale_bits: The client encodes standardised features at scale 2^input_scale_bits.
        input_bound: Largest Euclidean norm ||z||_2 of a standardised row accepted (in
            standard deviations of the model card's standardisation); the logit bound
            L = |b| + input_bound * ||w||_2 follows from it (Cauchy-Schwarz).
        rescale: Whether the gateway rescales the product (``compact``) or answers it as it is
            (``precise``, one prime).
    """

    name: str
    set_id: int
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    input_scale_bits: int
    input_bound: float
    rescale: bool

    @property
    def slots(self) -> int:
        """N/2 (frame bounds use it)."""
        return self.poly_modulus_degree // 2

    @property
    def input_scale(self) -> float:
        """2^input_scale_bits."""
        return float(2**self.input_scale_bits)

    def context(self) -> Any:
        """The ``tenseal.sealapi.SEALContext`` (cached per set; 128-bit security enforced).

        Raises:
            InsecureParameters: SEAL refuses the set.
        """
        return _context(self.poly_modulus_degree, self.coeff_mod_bit_sizes)

    def primes(self) -> list[int]:
        """The coefficient-modulus primes SEAL picks (deterministic), special prime last."""
        return [int(m.value()) for m in self.context().key_context_data().parms().coeff_modulus()]

    def answer_prime(self) -> int:
        """The prime the answer lives modulo: the first one (after the rescale, if any)."""
        return self.primes()[0]

    def scales(self, logit_bound: float) -> tuple[float, float]:
        """Weight and answer scales for a model whose |logit| stays below ``logit_bound``.

        Args:
            logit_bound: L = |b| + R * ||w||_2 (standardised units); values below
                ``MIN_LOGIT_BOUND`` are raised to it.

        Returns:
            ``(weight_scale, answer_scale)``: the gateway encodes W at ``weight_scale``;
            the answer's coefficient 0 is logit * ``answer_scale``, at most HEADROOM * q0 / 2.
        """
        primes = self.primes()
        answer = HEADROOM * primes[0] / (2.0 * max(logit_bound, MIN_LOGIT_BOUND))
        product = answer * primes[1] if self.rescale else answer
        return product / self.input_scale, answer

    def to_dict(self) -> dict[str, Any]:
        """The model-independent part of the set's JSON in ``GET /v1/subnets/{id}``."""
        return {
            "name": self.name,
            "set_id": self.set_id,
            "scheme": "ckks",
            "layout": Layout.COEFF.label,
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "coeff_modulus": [str(p) for p in self.primes()],
            "input_scale_bits": self.input_scale_bits,
            "input_radius_sd": self.input_bound,
            "rescale": self.rescale,
            "encryption": "seeded symmetric (secret key), zstd",
            "security_bits": 128,
            "seal_versions": [f"4.{m}" for m in SEAL_MINOR_VERSIONS],
        }


@functools.lru_cache(maxsize=4)
def _context(n: int, bits: tuple[int, ...]) -> Any:
    try:
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(n)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(n, list(bits)))
        context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise InsecureParameters(f"SEAL refuses N={n}, {list(bits)}: {exc}") from exc
    if not context.parameters_set():
        raise InsecureParameters(f"SEAL refuses N={n}, {list(bits)}")
    return context


COMPACT = ParamSet("compact", 1, 2048, (24, 16, 14), 16, 32.0, rescale=True)
"""<= 16 KB each way per row, |logit error| about 1e-3 (bound stated per model)."""
PRECISE = ParamSet("precise", 2, 2048, (48,), 20, 32.0, rescale=False)
"""14.2 KB up, 28.1 KB down per row, |logit error| below 1e-4 (4.3e-5 measured on breast cancer)."""
PARAM_SETS: dict[str, ParamSet] = {s.name: s for s in (COMPACT, PRECISE)}
"""The sets every subnet offers, by name."""


def param_set_by_name(name: str) -> ParamSet:
    """The set called ``name``.

    Raises:
        ValueError: No such set.
    """
    try:
        return PARAM_SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown CKKS parameter set {name!r}; expected one of {sorted(PARAM_SETS)}"
        ) from None


def param_set_by_id(set_id: int) -> ParamSet | None:
    """The set with frame byte ``set_id``, or None (0 or unknown)."""
    for s in PARAM_SETS.values():
        if s.set_id == set_id:
            return s
    return None
