"""Node data: CSV validation, bundled data sets, per-node splits. Never imports Flower."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "load_dataset",
    "read_node_csv",
    "split_rows",
    "write_csv",
]


class DataError(ValueError):
    """A data file is unusable; the message names the file, and the row and column if any."""


@dataclass(frozen=True)
class Dataset:
    """Rows with named features and a binary label.

    Attributes:
        feature_names: feature column names, in model order.
        label: label column name.
        x: float64 array of shape (n_rows, n_features), raw units.
        y: float64 array of shape (n_rows,), values in {0, 1}.
    """

    feature_names: tuple[str, ...]
    label: str
    x: FloatArray
    y: FloatArray

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.x.shape[0])

    def take(self, rows: NDArray[np.intp]) -> Dataset:
        """Subset of rows.

        Args:
            rows: integer indices.

        Returns:
            A new dataset with those rows, same columns.
        """
        return Dataset(self.feature_names, self.label, self.x[rows], self.y[rows])


DATASETS = ("spector", "breast-cancer")
"""Bundled data sets: Spector & Mazzeo (1980), 32 rows (GRADE ~ GPA + TUCE + PSI);
scikit-learn's Wisconsin breast-cancer data, 569 rows, 30 features, label `malignant`."""


def load_dataset(name: str) -> Dataset:
    """Load a bundled data set.

    Args:
        name: one of :data:`DATASETS`.

    Returns:
        The data set. Breast cancer: label `malignant` = 1 - sklearn's target (so 1
        means malignant); feature names with spaces replaced by underscores.

    Raises:
        DataError: for an unknown name.
    """
    if name == "spector":
        path = resources.files("trainer") / "data" / "spector.csv"
        with resources.as_file(path) as p:
            return read_node_csv(p, label="GRADE")
    if name == "breast-cancer":
        from sklearn.datasets import load_breast_cancer

        raw = load_breast_cancer()
        names = tuple(str(n).replace(" ", "_") for n in raw.feature_names)
        return Dataset(
            names,
            "malignant",
            np.asarray(raw.data, dtype=np.float64),
            1.0 - np.asarray(raw.target, dtype=np.float64),
        )
    raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def read_node_csv(
    path: str | Path,
    *,
    label: str,
    features: tuple[str, ...] | list[str] | None = None,
    max_rows: int = 10_000_000,
) -> Dataset:
    """Read and validate a node's CSV file.

    Checks: a header with the label and every requested feature column, at least one
    data row, every cell of those columns a finite number, no missing value, the label
    0 or 1, and no more than `max_rows` rows.

    Args:
        path: CSV file with a header row.
        label: name of the binary label column.
        features: feature columns in model order; default every column except the label,
            in file order.
        max_rows: upper bound on rows read (memory bound). Default 10 million.

    Returns:
        The validated data set.

    Raises:
        DataError: naming the file, and for a bad cell its 1-based line number and column.
    """
    p = Path(path)
    try:
        handle = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{p}: cannot open ({exc.strerror})") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{p}: empty file, expected a header row") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{p}: not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            raise DataError(f"{p}: line 1: not a CSV header ({exc})") from exc
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise DataError(f"{p}: duplicate column(s) {', '.join(dup)}")
        if label not in header:
            raise DataError(f"{p}: missing required label column {label!r}")
        if features is None:
            features = tuple(h for h in header if h != label)
        features = tuple(features)
        if not features:
            raise DataError(f"{p}: no feature columns besides the label {label!r}")
        missing = [f for f in features if f not in header]
        if missing:
            raise DataError(f"{p}: missing required column(s) {', '.join(map(repr, missing))}")
        if label in features:
            raise DataError(f"{p}: the label column {label!r} is also listed as a feature")
        cols = [header.index(f) for f in features]
        label_col = header.index(label)
        xs: list[list[float]] = []
        ys: list[float] = []
        try:
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(
                        f"{p}: line {line_no}: {len(row)} fields, the header has {len(header)}"
                    )
                if len(xs) >= max_rows:
                    raise DataError(f"{p}: more than {max_rows} rows")
                values = [_number(p, line_no, header[c], row[c]) for c in cols]
                y = _number(p, line_no, label, row[label_col])
                if y not in (0.0, 1.0):
                    raise DataError(
                        f"{p}: line {line_no}, column {label!r}: label must be 0 or 1, "
                        f"got {row[label_col].strip()!r}"
                    )
                xs.append(values)
                ys.append(y)
        except csv.Error as exc:
            raise DataError(f"{p}: line {reader.line_num}: malformed CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"{p}: not UTF-8 text ({exc.reason})") from exc
    if not xs:
        raise DataError(f"{p}: no data rows")
    return Dataset(features, label, np.array(xs, dtype=np.float64), np.array(ys))


def _number(path: Path, line_no: int, column: str, cell: str) -> float:
    text = cell.strip()
    if text == "" or text.lower() in {"na", "nan", "null", "none"}:
        raise DataError(f"{path}: line {line_no}, column {column!r}: missing value")
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}: line {line_no}, column {column!r}: not a number: {text!r}"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{path}: line {line_no}, column {column!r}: not finite: {text!r}")
    return value


def split_rows(
    data: Dataset, n_nodes: int, *, mode: str = "iid", seed: int = 0
) -> list[NDArray[np.intp]]:
    """Assign rows to nodes.

    Args:
        data: the pooled data.
        n_nodes: number of nodes (>= 1, <= rows).
        mode: "iid" (shuffled, near-equal sizes) or "label-skew" (rows sorted by
            label, then cut into contiguous near-equal blocks, so the first nodes hold
            mostly label 0 and the last mostly label 1).
        seed: shuffling seed.

    Returns:
        One sorted index array per node; together they partition `range(n_rows)`.

    Raises:
        DataError: for a bad mode or node count.
    """
    n = data.n_rows
    if not 1 <= n_nodes <= n:
        raise DataError(f"cannot split {n} rows over {n_nodes} nodes")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if mode == "iid":
        pass
    elif mode == "label-skew":
        order = order[np.argsort(data.y[order], kind="stable")]
    else:
        raise DataError(f"unknown split mode {mode!r}; use 'iid' or 'label-skew'")
    return [np.sort(part) for part in np.array_split(order, n_nodes)]


def write_csv(data: Dataset, path: str | Path) -> None:
    """Write a data set as CSV (features in order, then the label).

    Args:
        data: rows to write.
        path: destination file; its parent directory must exist.
    """
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        w = csv.writer(handle)
        w.writerow([*data.feature_names, data.label])
        for xrow, y in zip(data.x, data.y, strict=True):
            w.writerow([*(repr(float(v)) for v in xrow), int(y)])
