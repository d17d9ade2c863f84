from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.data import DataError, Dataset, load_dataset, read_node_csv, split_rows, write_csv


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "node.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_read_node_csv_returns_features_in_the_requested_order(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    d = read_node_csv(p, label="y", features=["b", "a"])
    assert d.feature_names == ("b", "a")
    np.testing.assert_array_equal(d.x, [[2, 1], [4, 3]])
    np.testing.assert_array_equal(d.y, [0, 1])


@pytest.mark.parametrize(
    ("text", "features", "message"),
    [
        ("a,b\n1,2\n", None, "missing required label column 'y'"),
        ("a,y\n1,0\n", ["a", "b"], "missing required column(s) 'b'"),
        ("a,y\n1,0\nx1,1\n", None, "line 3, column 'a': not a number: 'x1'"),
        ("a,y\n1,0\n,1\n", None, "line 3, column 'a': missing value"),
        ("a,y\n1,0\nNA,1\n", None, "line 3, column 'a': missing value"),
        ("a,y\n1,0\ninf,1\n", None, "line 3, column 'a': not finite"),
        ("a,y\n1,2\n", None, "line 2, column 'y': label must be 0 or 1, got '2'"),
        ("a,y\n1,0\n1,0,5\n", None, "line 3: 3 fields, the header has 2"),
        ("a,y\n", None, "no data rows"),
        ("", None, "empty file"),
        ("a,a,y\n1,1,0\n", None, "duplicate column(s) a"),
        ("y\n1\n", None, "no feature columns"),
    ],
)
def test_read_node_csv_rejects_a_bad_file_naming_file_row_and_column(
    tmp_path: Path, text: str, features: list[str] | None, message: str
) -> None:
    p = _csv(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_node_csv(p, label="y", features=features)
    assert str(p) in str(err.value)
    assert message in str(err.value)


def test_read_node_csv_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot open"):
        read_node_csv(tmp_path / "nope.csv", label="y")


def test_read_node_csv_rejects_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,y\n1,0\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="UTF-8"):
        read_node_csv(p, label="y")


def test_bundled_spector_has_32_rows_and_the_textbook_columns() -> None:
    d = load_dataset("spector")
    assert d.feature_names == ("GPA", "TUCE", "PSI")
    assert d.n_rows == 32 and d.y.sum() == 11


def test_load_dataset_rejects_an_unknown_name() -> None:
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("iris")


@pytest.mark.parametrize("mode", ["iid", "label-skew"])
def test_split_rows_partitions_every_row_exactly_once(spector: Dataset, mode: str) -> None:
    parts = split_rows(spector, 3, mode=mode)
    assert sorted(np.concatenate(parts).tolist()) == list(range(32))


def test_label_skew_puts_the_labels_apart(breast_cancer: Dataset) -> None:
    parts = split_rows(breast_cancer, 3, mode="label-skew")
    rates = [breast_cancer.y[p].mean() for p in parts]
    assert rates[0] == 0.0 and rates[-1] == 1.0


def test_split_rows_rejects_an_unknown_mode(spector: Dataset) -> None:
    with pytest.raises(DataError, match="unknown split mode"):
        split_rows(spector, 3, mode="dirichlet")


def test_split_rows_rejects_more_nodes_than_rows(spector: Dataset) -> None:
    with pytest.raises(DataError, match="cannot split"):
        split_rows(spector, 33)


def test_write_csv_round_trips_exactly(tmp_path: Path, breast_cancer: Dataset) -> None:
    write_csv(breast_cancer, tmp_path / "bc.csv")
    back = read_node_csv(tmp_path / "bc.csv", label=breast_cancer.label)
    np.testing.assert_array_equal(back.x, breast_cancer.x)
    assert back.feature_names == breast_cancer.feature_names
