"""Client side of encrypted inference: layout choice, batching, and the bounded context cache."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ckks import (
    DEFAULT_LIMITS,
    AffineModel,
    CkksError,
    CkksParams,
    ClientContext,
    Layout,
    ParamSet,
    Wire,
    param_set_by_name,
    row_period,
)
from clients.sdk._exceptions import InvalidInput, ServerError

__all__ = [
    "ContextCache",
    "as_matrix",
    "choose_layout",
    "choose_wire",
    "params_of",
    "set_of",
    "split_rows",
]

MAX_ROWS_PER_ROW_REQUEST = DEFAULT_LIMITS.max_rows_per_row_request
"""Rows per request in a one-row-per-ciphertext layout: the gateway's parsing bound (64)."""

DEFAULT_LAYOUTS = frozenset({"row", "column"})
"""Layouts assumed when a subnet does not list its own."""


def params_of(ckks: Mapping[str, Any] | None, subnet_id: int) -> tuple[CkksParams, frozenset[str]]:
    """The checked CKKS parameters and layouts a subnet advertises.

    Args:
        ckks: The subnet's ``ckks`` object (``CkksParams.to_dict`` form).
        subnet_id: For messages.

    Returns:
        The parameters (128-bit security and precision checked here, not trusted) and the
        set of layout labels.

    Raises:
        ServerError: The subnet advertises none, or parameters that fail the checks.
    """
    if not ckks:
        raise ServerError(
            0, "No CKKS parameters", f"subnet {subnet_id} does not offer encrypted inference"
        )
    try:
        params = CkksParams.from_dict(ckks)
    except CkksError as exc:
        raise ServerError(0, "Unusable CKKS parameters", f"subnet {subnet_id}: {exc}") from exc
    layouts = ckks.get("layouts")
    labels = frozenset(str(x) for x in layouts) if isinstance(layouts, list) else DEFAULT_LAYOUTS
    return params, labels


def set_of(
    subnet_json: Mapping[str, Any], name: str, subnet_id: int
) -> tuple[ParamSet, AffineModel]:
    """A named parameter set the subnet offers, and its input standardisation.

    The set's numbers come from this SDK (``ckks.PARAM_SETS``); the subnet must list the set
    with the same ring size and primes. The standardisation is the subnet's
    ``feature_standardisation`` (identity when it states none); only its ``standardise``
    is used (the weights stay on the gateway).

    Args:
        subnet_json: The subnet's JSON (``Subnet.raw``).
        name: ``"compact"`` or ``"precise"``.
        subnet_id: For messages.

    Returns:
        ``(set, standardisation)``; the standardisation's weights are zeros.

    Raises:
        InvalidInput: Unknown set name.
        ServerError: The subnet does not offer the set, or offers it with other numbers or
            with an unusable standardisation.
    """
    try:
        pset = param_set_by_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    offered = subnet_json.get("ckks_parameter_sets") or {}
    advertised = offered.get(name) if isinstance(offered, Mapping) else None
    if not isinstance(advertised, Mapping):
        raise ServerError(0, "No such parameter set", f"subnet {subnet_id} does not offer {name}")
    if (
        advertised.get("poly_modulus_degree") != pset.poly_modulus_degree
        or tuple(advertised.get("coeff_mod_bit_sizes") or ()) != pset.coeff_mod_bit_sizes
        or advertised.get("input_scale_bits") != pset.input_scale_bits
    ):
        raise ServerError(
            0, "Unknown parameter set", f"subnet {subnet_id} offers {name} with other numbers"
        )
    features = subnet_json.get("feature_names") or []
    std = subnet_json.get("feature_standardisation")
    try:
        if isinstance(std, Mapping):
            mean, scale = std["mean"], std["scale"]
            affine = AffineModel.from_raw([0.0] * len(mean), 0.0, mean, scale)
        else:
            affine = AffineModel.from_raw([0.0] * len(features), 0.0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(0, "Unusable standardisation", f"subnet {subnet_id}: {exc}") from exc
    return pset, affine


def choose_layout(
    n_rows: int, n_features: int, advertised: Iterable[str] = DEFAULT_LAYOUTS
) -> Layout:
    """Pick the layout that sends fewer ciphertexts for this batch.

    A one-row-per-ciphertext layout sends ``n_rows`` ciphertexts; the column layout
    sends ``ceil(n_features / 2)`` whatever the number of rows (two features per
    ciphertext, up to N/2 rows). Their sizes are equal, so the smaller count wins and a
    tie goes to the column layout (it needs no evaluation keys). Of the one-row layouts,
    ``coeff`` is preferred over ``row`` when offered: it needs no Galois keys (a 99-byte
    context instead of about 1.5 MB) and took 4.4 ms instead of 10.3 ms of server time
    for one 30-feature row in ``bench/he/results.json``.

    Args:
        n_rows: Rows in the batch, >= 1.
        n_features: Features per row, >= 1.
        advertised: Layout labels the subnet offers.

    Returns:
        The layout.

    Raises:
        ServerError: The subnet offers no layout this SDK knows.
    """
    offered = set(advertised)
    one_row = Layout.COEFF if "coeff" in offered else Layout.ROW if "row" in offered else None
    if "column" in offered and (one_row is None or n_rows >= math.ceil(n_features / 2)):
        return Layout.COLUMN
    if one_row is None:
        raise ServerError(0, "No usable layout", f"the subnet offers {sorted(offered)}")
    return one_row


def split_rows(n_rows: int, layout: Layout, params: CkksParams) -> list[slice]:
    """Slices of a batch, each small enough for one request.

    Args:
        n_rows: Rows in the batch.
        layout: The layout chosen.
        params: The CKKS parameters (slots bound the column layout).

    Returns:
        Consecutive slices covering ``range(n_rows)``: at most N/2 rows each for the
        column layout; for the others at most 64, and no more uncompressed ciphertexts
        than fit the gateway's 8 MiB request bound (31 at N = 8192).
    """
    if layout is Layout.COLUMN:
        size = params.slots
    else:  # uncompressed (Wire.FAST) ciphertexts must fit the gateway's request bound
        fit = DEFAULT_LIMITS.ciphertexts_per_request(params)
        size = max(1, min(MAX_ROWS_PER_ROW_REQUEST, fit))
    return [slice(i, min(i + size, n_rows)) for i in range(0, n_rows, size)]


def choose_wire(layout: Layout, n_features: int, params: CkksParams) -> Wire:
    """The ciphertext serialization for one request of a batch split by :func:`split_rows`.

    ``Wire.FAST`` (quickest for the gateway) whenever the uncompressed request fits the
    gateway's default request bound, else ``Wire.COMPACT`` (wide column requests).

    Args:
        layout: The layout chosen.
        n_features: Features per row.
        params: The CKKS parameters.

    Returns:
        The wire form to pass to ``ClientContext.encrypt``.
    """
    if layout is not Layout.COLUMN:
        return Wire.FAST  # split_rows already sized the request for it
    n_ciphertexts = (n_features + 1) // 2
    fits = n_ciphertexts <= DEFAULT_LIMITS.ciphertexts_per_request(params)
    return Wire.FAST if fits else Wire.COMPACT


def as_matrix(rows: Any, feature_names: Sequence[str]) -> npt.NDArray[np.float64]:
    """Rows as a float64 matrix in the subnet's feature order.

    Args:
        rows: A 2-D array-like of shape (n_rows, n_features) already in feature order, or
            a sequence of mappings from feature name to value (extra names are refused).
        feature_names: The subnet's feature order (may be empty when not advertised, then
            only arrays are accepted).

    Returns:
        float64 array of shape (n_rows, n_features).

    Raises:
        InvalidInput: Empty, ragged, non-numeric or non-finite rows, a missing or unknown
            feature, or a width that differs from the subnet's feature count.
    """
    if isinstance(rows, Sequence) and rows and all(isinstance(r, Mapping) for r in rows):
        if not feature_names:
            raise InvalidInput("the subnet does not name its features; pass rows as arrays")
        known = set(feature_names)
        out = np.empty((len(rows), len(feature_names)))
        for i, row in enumerate(rows):
            extra = set(row) - known
            missing = known - set(row)
            if extra or missing:
                raise InvalidInput(
                    f"row {i}: "
                    + (f"unknown features {sorted(extra)} " if extra else "")
                    + (f"missing features {sorted(missing)}" if missing else "")
                )
            try:
                out[i] = [float(row[name]) for name in feature_names]
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"row {i} has a non-numeric value") from exc
    else:
        try:
            out = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("rows must be numbers of shape (n_rows, n_features)") from exc
    if out.ndim != 2 or out.shape[0] < 1 or out.shape[1] < 1:
        raise InvalidInput(f"rows must have shape (n_rows, n_features), got {out.shape}")
    if feature_names and out.shape[1] != len(feature_names):
        raise InvalidInput(
            f"rows have {out.shape[1]} features, the subnet expects {len(feature_names)}"
        )
    if not np.isfinite(out).all():
        raise InvalidInput("rows have non-finite values")
    return out


@dataclass
class CachedContext:
    """A secret CKKS context kept by the client and the id of its uploaded public part.

    Attributes:
        context: The client's keys.
        context_id: The gateway's id of the public part (None until uploaded).
    """

    context: ClientContext
    context_id: str | None = None


class ContextCache:
    """Client contexts per (parameters, layout, row width), least recently used evicted.

    Args:
        max_entries: Most contexts kept (each holds a secret key and SEAL objects;
            a row context about 1.5 MB).
    """

    def __init__(self, max_entries: int = 8) -> None:
        if max_entries < 1:
            raise InvalidInput("max_entries must be at least 1")
        self._max = max_entries
        self._items: OrderedDict[tuple[CkksParams, Layout, int], CachedContext] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, params: CkksParams, layout: Layout, n_features: int) -> CachedContext:
        """The cached context for these parameters and layout, made on first use.

        Args:
            params: Checked CKKS parameters.
            layout: The layout.
            n_features: Features per row (sets the Galois keys of a row context).

        Returns:
            The entry (``context_id`` None until the caller uploads it).

        Raises:
            InvalidInput: The codec refuses the shape (e.g. too many features for a row).
        """
        width = row_period(n_features) if layout is Layout.ROW else 0
        key = (params, layout, width)
        entry = self._items.get(key)
        if entry is None:
            try:
                context = ClientContext.create(params, layout=layout, n_features=n_features)
            except CkksError as exc:
                raise InvalidInput(str(exc)) from exc
            entry = CachedContext(context)
            self._items[key] = entry
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return entry
