"""Rows of a plaintext ``predict`` body: validated and laid out in the model's feature order.

A well-formed body (the common case) takes a typed msgspec decode; any other goes through a
checking loop that names each problem (row, feature, what is wrong) in the 422 body.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from gateway._errors import BadRequest, GatewayError

__all__ = ["MAX_ROW_ERRORS", "InvalidRows", "TooManyRows", "parse_rows"]

MAX_ROW_ERRORS = 20
"""Row problems reported in one 422 body (the first ones)."""
_ROWS_DECODER = msgspec.json.Decoder(dict[str, list[dict[str, float]]])


class InvalidRows(GatewayError):
    """Plaintext rows are missing features, carry unknown ones, or hold non-numbers."""

    status_code = 422
    title = "Invalid rows"
    slug = "invalid-rows"


class TooManyRows(GatewayError):
    """More rows than one plaintext request may carry."""

    status_code = 413
    title = "Too many rows"
    slug = "too-many-rows"


def parse_rows(
    body: bytes, feature_names: tuple[str, ...], max_rows: int
) -> npt.NDArray[np.float64]:
    """Validate a ``predict`` body and return its rows in the model's feature order.

    Args:
        body: ``{"rows": [{feature: number, ...}, ...]}`` as JSON bytes.
        feature_names: The served model's features, in order.
        max_rows: Most rows accepted.

    Returns:
        float64 array of shape (n_rows, n_features), columns in ``feature_names`` order.

    Raises:
        BadRequest: The body is not JSON.
        TooManyRows: More than ``max_rows`` rows (413).
        InvalidRows: Wrong shape, missing or unknown features, or values that are not
            finite numbers (422; up to :data:`MAX_ROW_ERRORS` problems listed in ``errors``).
    """
    fast = _fast_rows(body, feature_names, max_rows)
    if fast is not None:
        return fast
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) != {"rows"}:
        raise InvalidRows('the body must be {"rows": [{feature: number, ...}, ...]}')
    rows = data["rows"]
    if not isinstance(rows, list) or not rows:
        raise InvalidRows("rows must be a non-empty list of objects")
    if len(rows) > max_rows:
        raise TooManyRows(f"{len(rows)} rows exceed {max_rows} per request; split the batch")
    index = {name: j for j, name in enumerate(feature_names)}
    x = np.empty((len(rows), len(feature_names)), dtype=np.float64)
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if len(errors) >= MAX_ROW_ERRORS:
            break
        if not isinstance(row, dict):
            errors.append({"row": i, "problem": "not an object"})
            continue
        if len(row) != len(index) or not all(k in index for k in row):
            missing = [n for n in feature_names if n not in row]
            unknown = sorted(k for k in row if k not in index)
            if missing:
                errors.append({"row": i, "problem": "missing features", "features": missing})
            if unknown:
                errors.append({"row": i, "problem": "unknown features", "features": unknown})
            continue
        for name, value in row.items():
            number = _number(value)
            if number is None:
                errors.append({"row": i, "feature": name, "problem": "not a finite number"})
                break
            x[i, index[name]] = number
    if errors:
        first = errors[0]
        where = f"row {first['row']}" + (f", {first['feature']}" if "feature" in first else "")
        detail = f"{where}: {first['problem']}" + (
            f" {first['features']}" if "features" in first else ""
        )
        raise InvalidRows(detail, extra={"errors": errors[:MAX_ROW_ERRORS]})
    return x


def _fast_rows(
    body: bytes, feature_names: tuple[str, ...], max_rows: int
) -> npt.NDArray[np.float64] | None:
    """The rows as a matrix when the body is well formed (the common case), else None.

    A typed msgspec decode checks the numbers in C; about twice as fast as the checking loop
    on 569 x 30 rows. A None sends the body through :func:`parse_rows`'s loop, which names
    each problem.
    """
    try:
        data = _ROWS_DECODER.decode(body)
    except msgspec.DecodeError:  # also msgspec.ValidationError
        return None
    rows = data.get("rows")
    if len(data) != 1 or not rows or len(rows) > max_rows:
        return None
    keys = set(feature_names)
    if not all(row.keys() == keys for row in rows):
        return None
    take = operator.itemgetter(*feature_names)
    x = np.array([take(row) for row in rows], dtype=np.float64).reshape(len(rows), len(keys))
    return x if bool(np.isfinite(x).all()) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
