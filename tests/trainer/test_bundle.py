from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trainer.bundle import (
    BundleError,
    feature_schema_hash,
    load_bundle,
    result_to_card,
    write_bundle,
)
from trainer.data import Dataset, split_rows
from trainer.task import JobConfig, TrainingResult, run_in_process


@pytest.fixture(scope="module")
def bc_result(breast_cancer: Dataset) -> TrainingResult:
    parts = [breast_cancer.take(ix) for ix in split_rows(breast_cancer, 3)]
    cfg = JobConfig(breast_cancer.feature_names, breast_cancer.label, l2_c=1.0, n_nodes=3)
    return run_in_process(parts, cfg)


def test_onnxruntime_agrees_with_the_coefficients_to_1e6_in_probability(
    tmp_path: Path, bc_result: TrainingResult, breast_cancer: Dataset
) -> None:
    written = write_bundle(result_to_card(bc_result, secure=True), tmp_path)
    bundle = load_bundle(written.path, written.sha256)
    session = ort.InferenceSession(bundle.onnx_bytes)
    prob = session.run(["probabilities"], {"x": breast_cancer.x})[0][:, 1]
    expected = 1 / (1 + np.exp(-(breast_cancer.x @ bc_result.coef + bc_result.intercept)))
    assert np.max(np.abs(prob - expected)) < 1e-6
    assert np.max(np.abs(bundle.predict_proba(breast_cancer.x) - expected)) < 1e-12


def test_bundle_is_content_addressed_and_written_idempotently(
    tmp_path: Path, bc_result: TrainingResult
) -> None:
    card = result_to_card(bc_result, secure=True)
    a = write_bundle(card, tmp_path)
    b = write_bundle(card, tmp_path)
    assert a == b and a.path.name == a.sha256
    assert hashlib.sha256((a.path / "manifest.json").read_bytes()).hexdigest() == a.sha256


def test_card_records_features_penalty_rounds_and_per_node_rows(bc_result: TrainingResult) -> None:
    card = result_to_card(bc_result, secure=True, round_trips=40)
    assert card["feature_names"][0] == "mean_radius"
    assert card["penalty"] == {
        "type": "l2",
        "C": 1.0,
        "on": "standardised features, not the intercept",
    }
    assert card["training"]["converged"] and card["training"]["round_trips"] == 40
    assert sum(n["n_rows"] for n in card["nodes"]) == 569
    assert set(card["evaluation"]["per_node"]["0"]) == {"log_loss", "accuracy", "roc_auc"}
    assert card["feature_schema_sha256"] == feature_schema_hash(card["feature_names"], "malignant")
    json.dumps(card, allow_nan=False)


def test_load_bundle_finds_the_bundle_in_a_store_by_raw_digest_bytes(
    tmp_path: Path, bc_result: TrainingResult
) -> None:
    w = write_bundle(result_to_card(bc_result, secure=False), tmp_path)
    assert load_bundle(tmp_path, bytes.fromhex(w.sha256)).sha256 == w.sha256
    assert load_bundle(tmp_path, "0x" + w.sha256.upper()).sha256 == w.sha256


def test_load_bundle_rejects_a_different_expected_digest(
    tmp_path: Path, bc_result: TrainingResult
) -> None:
    w = write_bundle(result_to_card(bc_result, secure=False), tmp_path)
    with pytest.raises(BundleError, match="does not match expected"):
        load_bundle(w.path, "00" * 32)


def test_load_bundle_rejects_a_tampered_card(tmp_path: Path, bc_result: TrainingResult) -> None:
    w = write_bundle(result_to_card(bc_result, secure=False), tmp_path)
    card = json.loads((w.path / "card.json").read_text())
    card["intercept"] += 1.0
    (w.path / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"card\.json does not match"):
        load_bundle(w.path, w.sha256)


def test_load_bundle_rejects_a_missing_model_file(
    tmp_path: Path, bc_result: TrainingResult
) -> None:
    w = write_bundle(result_to_card(bc_result, secure=False), tmp_path / "store")
    copy = tmp_path / "copy"
    shutil.copytree(w.path, copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing model\.onnx"):
        load_bundle(copy, w.sha256)


def test_load_bundle_rejects_a_directory_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(tmp_path)


def test_load_bundle_rejects_a_malformed_digest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a sha256"):
        load_bundle(tmp_path, "abc")
