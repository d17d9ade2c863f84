from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.cli import CliError
from trainer.cli import register
from trainer.data import read_node_csv


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="twopm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_register_adds_node_train_data_and_publish() -> None:
    parser = argparse.ArgumentParser(prog="twopm")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    assert {"node", "train", "data", "publish"} <= set(sub.choices)


@pytest.mark.parametrize("mode", ["iid", "label-skew"])
def test_data_split_writes_one_valid_csv_per_node(tmp_path: Path, mode: str) -> None:
    assert _run(["data", "split", "--dataset", "spector", "--nodes", "3", "--mode", mode,
                 "--out-dir", str(tmp_path)]) == 0  # fmt: skip
    parts = [read_node_csv(tmp_path / f"node-{i}.csv", label="GRADE") for i in range(3)]
    assert sum(p.n_rows for p in parts) == 32


def test_data_split_of_a_csv_needs_its_label(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="--csv needs --label"):
        _run(["data", "split", "--csv", "x.csv", "--out-dir", str(tmp_path)])


def test_data_split_rejects_more_nodes_than_rows(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot split 32 rows over 40 nodes"):
        _run(["data", "split", "--dataset", "spector", "--nodes", "40", "--out-dir", str(tmp_path)])


def test_node_check_only_accepts_a_valid_csv(tmp_path: Path) -> None:
    _run(["data", "split", "--dataset", "spector", "--out-dir", str(tmp_path)])
    assert _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
                 "--superlink", "127.0.0.1:1", "--check-only"]) == 0  # fmt: skip


def test_node_stops_on_a_bad_csv_naming_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("GPA,TUCE,PSI,GRADE\n2.5,20,0,1\n3.1,abc,1,0\n")
    with pytest.raises(CliError) as err:
        _run(["node", "--data", str(bad), "--label", "GRADE", "--superlink", "127.0.0.1:1",
              "--insecure"])  # fmt: skip
    assert str(bad) in str(err.value) and "line 3, column 'TUCE'" in str(err.value)


def test_node_refuses_to_start_without_tls_or_insecure(tmp_path: Path) -> None:
    _run(["data", "split", "--dataset", "spector", "--out-dir", str(tmp_path)])
    with pytest.raises(CliError, match="--root-certificates"):
        _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
              "--superlink", "127.0.0.1:1"])  # fmt: skip


def test_node_rejects_a_malformed_operator_address(tmp_path: Path) -> None:
    _run(["data", "split", "--dataset", "spector", "--out-dir", str(tmp_path)])
    with pytest.raises(CliError, match="operator-address"):
        _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
              "--superlink", "127.0.0.1:1", "--insecure", "--operator-address", "0x12"])  # fmt: skip


def test_a_second_node_on_the_same_runtime_port_is_refused_naming_the_flag(tmp_path: Path) -> None:
    import socket

    _run(["data", "split", "--dataset", "spector", "--out-dir", str(tmp_path)])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first_node:
        first_node.bind(("127.0.0.1", 0))
        first_node.listen()
        port = first_node.getsockname()[1]
        with pytest.raises(CliError, match=f"--runtime-port {port} is in use on this host"):
            _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
                  "--superlink", "127.0.0.1:1", "--insecure", "--runtime-port", str(port)])  # fmt: skip


def test_a_runtime_port_out_of_range_is_refused(tmp_path: Path) -> None:
    _run(["data", "split", "--dataset", "spector", "--out-dir", str(tmp_path)])
    with pytest.raises(CliError, match="--runtime-port 99999999 is not a TCP port"):
        _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
              "--superlink", "127.0.0.1:1", "--insecure", "--runtime-port", "99999999"])  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --features and --label"),
        (["--dataset", "spector", "--nodes", "1"], "at least 2 nodes"),
        (["--dataset", "spector", "--l2-c", "-1"], "--l2-c must be >= 0"),
        (["--dataset", "spector", "--holdout-fraction", "0.9"], "--holdout-fraction"),
        (["--dataset", "spector", "--gtol", "0"], "must be positive"),
        (["--dataset", "spector", "--min-nodes", "4"], r"--min-nodes must be between 1 and"),
        (["--dataset", "spector", "--min-nodes", "0"], r"--min-nodes must be between 1 and"),
        (
            ["--dataset", "spector", "--nodes", "5", "--min-nodes", "2"],
            r"--min-nodes must be a majority of 5 nodes under SecAgg\+ \(at least 3\)",
        ),
        (
            ["--dataset", "spector", "--root-certificates", "/no/such/ca.pem"],
            "--root-certificates: no such file /no/such/ca.pem",
        ),
    ],
)
def test_train_rejects_bad_options_before_contacting_the_superlink(
    extra: list[str], message: str
) -> None:
    with pytest.raises(CliError, match=message):
        _run(["train", "--superlink", "127.0.0.1:1", *extra])


def test_train_reports_an_unreachable_superlink_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"flwr run failed against 127\.0\.0\.1:1"):
        _run(["train", "--superlink", "127.0.0.1:1", "--dataset", "spector",
              "--output-dir", str(tmp_path / "out"), "--model-store", str(tmp_path / "s")])  # fmt: skip


def test_node_refuses_an_auth_key_file_that_does_not_exist(tmp_path: Path) -> None:
    _run(["data", "split", "--dataset", "spector", "--nodes", "3", "--out-dir", str(tmp_path)])
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(CliError, match=r"--auth-key: no such file /no/such/node\.key"):
        _run(["node", "--data", str(tmp_path / "node-0.csv"), "--label", "GRADE",
              "--superlink", "127.0.0.1:1", "--root-certificates", str(tmp_path / "ca.pem"),
              "--auth-key", "/no/such/node.key"])  # fmt: skip
