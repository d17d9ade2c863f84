"""End to end on Flower's deployment runtime: a SuperLink and 3 SuperNode processes on loopback."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from trainer_references import pooled_logit_mle

from trainer.bundle import load_bundle
from trainer.cli import register
from trainer.data import Dataset, split_rows, write_csv
from trainer.deployment import DeploymentError, LocalFederation, RunHandle, wait_for_result

OPERATORS = ["0x" + f"{i:02x}" * 20 for i in (0xA1, 0xB2, 0xC3)]


def _node_csvs(data: Dataset, tmp_path: Path, mode: str) -> list[Path]:
    paths = []
    for i, rows in enumerate(split_rows(data, 3, mode=mode)):
        path = tmp_path / f"node-{i}.csv"
        write_csv(data.take(rows), path)
        paths.append(path)
    return paths


def _config(data: Dataset, tmp_path: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "features": ",".join(data.feature_names),
        "label": data.label,
        "l2-c": 0.0,
        "n-nodes": 3,
        "secure": True,
        "round-timeout-s": 60.0,
        "model-store": str(tmp_path / "store"),
        "job-name": "e2e",
    }
    cfg.update(over)
    return cfg


def test_twopm_train_on_three_supernodes_with_secagg_equals_the_pooled_logit_fit(
    spector: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    with LocalFederation(_node_csvs(spector, tmp_path, "label-skew"), OPERATORS) as fed:
        code = _twopm(["train", "--superlink", fed.superlink_address, "--dataset", "spector",
                       "--nodes", "3", "--model-store", str(tmp_path / "store"),
                       "--output-dir", str(tmp_path / "run"), "--json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    card = result["card"]
    got = np.r_[card["intercept"], card["coef"]]
    np.testing.assert_allclose(got, pooled_logit_mle(spector), rtol=0, atol=1e-6)
    assert card["training"]["secure_aggregation"] == "flower-secagg+"
    assert card["training"]["converged"]
    # 4 SecAgg+ message round trips per Newton round, nothing else
    assert result["round_trips"] == 4 * card["training"]["rounds"]
    progress = [json.loads(line) for line in (tmp_path / "run" / "progress.jsonl").open()]
    assert [p["round"] for p in progress] == list(range(1, card["training"]["rounds"] + 1))
    assert sorted(n["n_rows"] for n in card["nodes"]) == [10, 11, 11]
    assert sorted(n["operator_address"] for n in card["nodes"]) == OPERATORS
    bundle = load_bundle(result["bundle_path"], result["sha256"])
    prob = ort.InferenceSession(bundle.onnx_bytes).run(["probabilities"], {"x": spector.x})[0]
    np.testing.assert_allclose(prob[:, 1], bundle.predict_proba(spector.x), rtol=0, atol=1e-6)


def _twopm(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="twopm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_a_holder_over_claiming_its_rows_is_refused_before_anything_is_published(
    spector: Dataset, tmp_path: Path
) -> None:
    liar = {
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent / "overclaim"), os.environ.get("PYTHONPATH", "")]
        ),
        "TWOPM_TEST_EXTRA_ROWS": "5",
    }
    store = tmp_path / "store"
    with (
        LocalFederation(_node_csvs(spector, tmp_path, "iid"), OPERATORS, node_env={1: liar}) as fed,
        pytest.raises(DeploymentError) as refused,
    ):
        fed.run(_config(spector, tmp_path, **{"output-dir": str(tmp_path / "run")}), timeout_s=300)
    message = str(refused.value)
    assert "round 1: the holders claim 37 rows" in message
    assert "secure sum counts 32" in message
    assert OPERATORS[1] in message and "nothing is published" in message
    assert not (tmp_path / "run" / "result.json").exists()
    assert not store.exists() or not any(store.iterdir())


def _slow(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.environ.get("TWOPM_SLOW_TESTS") != "1", reason=reason)


@pytest.mark.slow
@_slow("about a minute; set TWOPM_SLOW_TESTS=1")
def test_a_node_dropping_out_mid_training_leaves_the_pooled_fit_of_the_other_two(
    spector: Dataset, tmp_path: Path
) -> None:
    paths = _node_csvs(spector, tmp_path, "iid")
    with LocalFederation(paths, OPERATORS) as fed:

        def stop_after_first_round(rec: dict[str, Any]) -> None:
            if rec.get("round") == 1:
                threading.Thread(target=fed.stop_node, args=(2,)).start()

        result = fed.run(
            _config(spector, tmp_path, **{"round-timeout-s": 8.0}),
            timeout_s=300,
            on_progress=stop_after_first_round,
        )
    card = result["card"]
    survivors = spector.take(np.concatenate(split_rows(spector, 3, mode="iid")[:2]))
    assert card["training"]["converged"]
    assert card["training"]["min_nodes"] == 2
    assert len(card["training"]["dropped_nodes"]) == 1
    assert sorted(n["operator_address"] for n in card["nodes"]) == OPERATORS[:2]
    assert card["n_rows"] == survivors.n_rows
    got = np.r_[card["intercept"], card["coef"]]
    np.testing.assert_allclose(got, pooled_logit_mle(survivors), rtol=0, atol=1e-6)


@pytest.mark.slow
@_slow("about a minute; set TWOPM_SLOW_TESTS=1")
def test_a_node_dropping_out_below_the_minimum_aborts_the_run_with_a_clear_error(
    spector: Dataset, tmp_path: Path
) -> None:
    with LocalFederation(_node_csvs(spector, tmp_path, "iid"), OPERATORS) as fed:

        def stop_after_first_round(rec: dict[str, Any]) -> None:
            if rec.get("round") == 1:
                threading.Thread(target=fed.stop_node, args=(2,)).start()

        with pytest.raises(DeploymentError, match=r"fewer than the minimum of 3|minimum 3"):
            fed.run(
                _config(spector, tmp_path, **{"round-timeout-s": 8.0, "min-nodes": 3}),
                timeout_s=300,
                on_progress=stop_after_first_round,
            )


def test_waiting_for_a_run_stops_when_another_thread_cancels_it(tmp_path: Path) -> None:
    """What Ctrl-C of `twopm up` relies on: a run that would wait minutes gives up within a poll."""
    handle = RunHandle(run_id=7, output_dir=tmp_path, flwr_home=tmp_path)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(DeploymentError, match="run 7: cancelled"):
        wait_for_result(handle, timeout_s=600, cancel=cancel)
    assert time.monotonic() - started < 60  # not the 600 s deadline


def test_a_result_written_before_the_cancel_is_still_returned(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text('{"sha256": "ab"}')
    cancel = threading.Event()
    handle = RunHandle(run_id=8, output_dir=tmp_path, flwr_home=tmp_path)
    assert wait_for_result(handle, timeout_s=5, cancel=cancel) == {"sha256": "ab"}
