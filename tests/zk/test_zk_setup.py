"""The committed Solidity verifiers are the ones the (reproducible) development setup exports, and the
fixed-point encoding keeps the served models' logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zk import (
    SUPPORTED_FEATURE_COUNTS,
    FixedPointRangeError,
    decode_logit,
    encode_features,
    encode_model,
    fixed_logit,
    from_field,
    to_field,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("n_features", SUPPORTED_FEATURE_COUNTS)
def test_the_committed_verifier_is_the_one_the_cached_keys_export(n_features, keys3, keys30):
    keys = {3: keys3, 30: keys30}[n_features]
    committed = ROOT / "contracts" / "src" / "zk" / keys.solidity.name
    assert committed.read_text() == keys.solidity.read_text(), (
        "run: python -m zk setup --write-verifiers && npm run build:contracts"
    )
    assert "DEVELOPMENT KEYS" in committed.read_text()


def test_fixed_point_logits_match_the_breast_cancer_and_spector_models_closely():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    lr = LogisticRegression(max_iter=5000).fit((x - mean) / scale, data.target)
    coef = lr.coef_[0] / scale
    intercept = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / scale))
    w, b = encode_model(coef, intercept)
    errors = [
        abs(
            decode_logit(to_field(fixed_logit(w, b, encode_features(row))))
            - (coef @ row + intercept)
        )
        for row in x
    ]
    assert max(errors) < 5e-5  # measured 1.6e-5: a probability error below 1e-5
    spector_w, spector_b = encode_model([2.826113, 0.095158, 2.378688], -13.021347)
    row = [2.66, 20.0, 0.0]
    got = decode_logit(to_field(fixed_logit(spector_w, spector_b, encode_features(row))))
    assert abs(got - (2.826113 * 2.66 + 0.095158 * 20 - 13.021347)) < 1e-6


def test_field_round_trip_and_range_errors():
    assert from_field(to_field(-5)) == -5 and from_field(to_field(7)) == 7
    with pytest.raises(FixedPointRangeError):
        from_field(-1)
    with pytest.raises(FixedPointRangeError, match="feature 0"):
        encode_features([float(1 << 24)])
    assert encode_features([float((1 << 24) - 1)])  # just inside
    with pytest.raises(FixedPointRangeError, match="weight 1"):
        encode_model([1.0, 2.0**25], 0.0)
    with pytest.raises(FixedPointRangeError, match="intercept"):
        encode_model([1.0], float("inf"))


def test_taking_the_build_lock_removes_work_left_by_a_killed_build_and_nothing_else(tmp_path):
    from zk._setup import BUILD_DIR_PREFIX, _locked

    stale = tmp_path / f"{BUILD_DIR_PREFIX}abc123"
    stale.mkdir()
    (stale / "pot_final.ptau").write_bytes(b"\0" * 1024)
    witness_compile = tmp_path / "tmpw1tness"  # unlocked compiles work here; never swept
    witness_compile.mkdir()
    keys = tmp_path / "logit_f3_0123456789abcdef"
    keys.mkdir()
    (keys / "logit.zkey").write_bytes(b"key")

    with _locked(tmp_path / ".lock"):
        assert not stale.exists()
    assert witness_compile.is_dir()
    assert (keys / "logit.zkey").read_bytes() == b"key"
