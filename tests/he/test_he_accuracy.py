"""Decrypted logits equal the plaintext w.x + b within 1e-4 on every row, in every layout."""

import numpy as np
import pytest

from ckks import ClientContext, Layout, sigmoid
from gateway.he import HeEvaluator

TOLERANCE = 1e-4
ROWS_PER_REQUEST = 30  # uncompressed (Wire.FAST) ciphertexts: 30 fit the 8 MiB request bound


def _encrypted_logits(client: ClientContext, ev: HeEvaluator, fitted, layout: Layout) -> np.ndarray:
    step = fitted.x.shape[0] if layout is Layout.COLUMN else ROWS_PER_REQUEST
    out = []
    for start in range(0, fitted.x.shape[0], step):
        rows = fitted.x[start : start + step]
        result = ev.evaluate(
            client.encrypt(rows, layout), fitted.model, context_id=client.context_id
        )
        assert result.n_rows == rows.shape[0]
        out.append(client.decrypt_logits(result.response, expected_rows=rows.shape[0]))
    return np.concatenate(out)


def _cases():
    for dataset in ["spector", "breast_cancer"]:
        for layout in Layout:
            # 569 one-row ciphertexts take tens of seconds on 2 shared cores.
            slow = dataset == "breast_cancer" and layout.one_row_per_ciphertext
            marks = [pytest.mark.slow] if slow else []
            yield pytest.param(dataset, layout, id=f"{layout.label}-{dataset}", marks=marks)


@pytest.mark.parametrize(("dataset", "layout"), list(_cases()))
def test_decrypted_logits_match_plaintext_logits_on_every_row(
    request, dataset, layout, row_client, evaluator
):
    fitted = request.getfixturevalue(dataset)
    logits = _encrypted_logits(row_client, evaluator, fitted, layout)
    assert logits.shape == fitted.logits.shape
    assert np.abs(logits - fitted.logits).max() < TOLERANCE


def test_sigmoid_of_decrypted_logits_matches_sklearn_probabilities(
    spector, column_client, evaluator
):
    logits = _encrypted_logits(column_client, evaluator, spector, Layout.COLUMN)
    expected = 1 / (1 + np.exp(-spector.logits))
    assert np.abs(sigmoid(logits) - expected).max() < TOLERANCE


def test_sigmoid_is_stable_for_large_logits():
    p = sigmoid([-800.0, 0.0, 800.0])
    assert list(p) == [0.0, 0.5, 1.0]


def test_a_full_column_batch_of_n_over_2_rows_is_evaluated(breast_cancer, column_client, evaluator):
    rng = np.random.default_rng(1)
    rows = breast_cancer.x[rng.integers(0, breast_cancer.x.shape[0], size=4096)]
    result = evaluator.evaluate(column_client.encrypt(rows), breast_cancer.model)
    expected = rows @ np.array(breast_cancer.model.weights) + breast_cancer.model.intercept
    assert result.n_rows == 4096
    assert np.abs(column_client.decrypt_logits(result.response) - expected).max() < TOLERANCE
