"""Evaluation rejects ciphertexts that do not fit, and keeps working afterwards."""

import contextlib

import numpy as np
import pytest
import tenseal.sealapi as seal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckks import (
    DEFAULT_PARAMS,
    CiphertextRejected,
    CkksError,
    CkksParams,
    ClientContext,
    FrameTooLarge,
    Layout,
    ShapeMismatch,
    Wire,
    encode_request,
    parse_request,
    save_bytes,
    seal_context,
)
from gateway.he import ContextNotCached, HeEvaluator, LinearModel

MODEL = LinearModel.from_arrays([0.5, -1.25, 2.0], 0.25)
X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
EXPECTED = X @ np.array(MODEL.weights) + MODEL.intercept


def _ok(ev, client, layout=Layout.COLUMN):
    result = ev.evaluate(client.encrypt(X, layout), MODEL, context_id=client.context_id)
    assert np.abs(client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4


def test_evaluate_rejects_a_feature_count_other_than_the_models(evaluator, column_client):
    with pytest.raises(ShapeMismatch, match="takes 3"):
        evaluator.evaluate(column_client.encrypt(np.ones((2, 4))), MODEL)


def test_evaluate_rejects_ciphertexts_made_for_other_parameters(evaluator):
    other = ClientContext.create(CkksParams(8192, (60, 40, 40, 60), 40))
    with pytest.raises(CiphertextRejected, match="ciphertext 0"):
        evaluator.evaluate(other.encrypt(X, wire=Wire.COMPACT), MODEL)
    too_big = r"ciphertext 0 of \d+ bytes exceeds"  # 3 primes, uncompressed: over the bound
    with pytest.raises(FrameTooLarge, match=too_big):
        evaluator.evaluate(other.encrypt(X, wire=Wire.FAST), MODEL)


def test_evaluate_rejects_a_ciphertext_at_a_lower_level(evaluator, column_client):
    context = seal_context(DEFAULT_PARAMS)
    keygen = seal.KeyGenerator(context)
    encryptor = seal.Encryptor(context, keygen.secret_key())
    plain = seal.Plaintext()
    seal.CKKSEncoder(context).encode([1.0], context.last_parms_id(), 2.0**40, plain)
    low = save_bytes(encryptor.encrypt_symmetric(plain))
    with pytest.raises(CiphertextRejected, match="top level"):
        evaluator.evaluate(encode_request(Layout.COLUMN, 1, 3, [low] * 2), MODEL)


def test_evaluate_rejects_a_ciphertext_with_another_scale(evaluator):
    context = seal_context(DEFAULT_PARAMS)
    keygen = seal.KeyGenerator(context)
    encryptor = seal.Encryptor(context, keygen.secret_key())
    plain = seal.Plaintext()
    seal.CKKSEncoder(context).encode([1.0], context.first_parms_id(), 2.0**30, plain)
    odd = save_bytes(encryptor.encrypt_symmetric(plain))
    with pytest.raises(CiphertextRejected, match="scale"):
        evaluator.evaluate(encode_request(Layout.COLUMN, 1, 3, [odd] * 2), MODEL)


def test_row_layout_needs_a_cached_or_supplied_context(row_client):
    ev = HeEvaluator(DEFAULT_PARAMS)
    request = row_client.encrypt(X, Layout.ROW)
    with pytest.raises(ContextNotCached):
        ev.evaluate(request, MODEL, context_id=row_client.context_id)
    with pytest.raises(ShapeMismatch, match="needs an uploaded"):
        ev.evaluate(request, MODEL)
    result = ev.evaluate(
        request, MODEL, context_id=row_client.context_id, context_blob=row_client.public_bytes()
    )
    assert np.abs(row_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4
    assert ev.has_context(row_client.context_id)


def test_row_layout_rejects_a_context_narrower_than_the_features():
    narrow = ClientContext.create(layout=Layout.ROW, n_features=2)  # one slot, no keys
    ev = HeEvaluator(DEFAULT_PARAMS)
    ev.add_context(narrow.public_bytes())
    with pytest.raises(ShapeMismatch, match="needs a row context"):
        narrow.encrypt(X, Layout.ROW)
    wide = ClientContext.create(layout=Layout.ROW, n_features=4)
    with pytest.raises(ShapeMismatch, match=">= 2 slots"):
        ev.evaluate(wide.encrypt(X, Layout.ROW), MODEL, context_id=narrow.context_id)


def test_context_bytes_must_hash_to_the_claimed_id(row_client, column_client):
    ev = HeEvaluator(DEFAULT_PARAMS)
    with pytest.raises(CkksError, match="do not match"):
        ev.evaluate(
            row_client.encrypt(X, Layout.ROW),
            MODEL,
            context_id="0" * 64,
            context_blob=row_client.public_bytes(),
        )


def test_context_cache_is_bounded():
    ev = HeEvaluator(DEFAULT_PARAMS, context_cache_size=2)
    clients = [ClientContext.create(layout=Layout.ROW, n_features=3) for _ in range(3)]
    for c in clients:
        ev.add_context(c.public_bytes())
    assert [ev.has_context(c.context_id) for c in clients] == [False, True, True]


def test_an_all_zero_model_is_refused_rather_than_crashing(evaluator, column_client):
    with pytest.raises(ShapeMismatch, match="all zero"):
        evaluator.evaluate(column_client.encrypt(X), LinearModel.from_arrays([0, 0, 0], 1.0))


def test_zero_weights_are_skipped_in_the_column_kernel(evaluator, column_client):
    model = LinearModel.from_arrays([0.0, 2.0, 0.0], -1.0)
    result = evaluator.evaluate(column_client.encrypt(X), model)
    assert np.abs(column_client.decrypt_logits(result.response) - (2 * X[:, 1] - 1)).max() < 1e-4


def test_client_encrypt_rejects_bad_shapes_and_values(column_client):
    with pytest.raises(ShapeMismatch):
        column_client.encrypt(np.ones(3))
    with pytest.raises(ShapeMismatch, match="non-finite"):
        column_client.encrypt(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ShapeMismatch, match="too large"):
        column_client.encrypt(np.array([[1e30, 0.0, 0.0]]))
    from ckks import BatchTooLarge

    with pytest.raises(BatchTooLarge, match="split"):
        column_client.encrypt(np.ones((4097, 1)))


def test_decrypt_rejects_a_response_with_the_wrong_row_count(evaluator, column_client):
    result = evaluator.evaluate(column_client.encrypt(X), MODEL)
    with pytest.raises(CiphertextRejected, match="expected 3"):
        column_client.decrypt_logits(result.response, expected_rows=3)


@pytest.fixture(scope="module")
def coeff_request(coeff_client):
    return coeff_client.encrypt(X[:1], Layout.COEFF)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_evaluate_raises_only_codec_errors_on_corrupted_ciphertexts(
    evaluator, coeff_client, coeff_request, data
):
    frame = parse_request(coeff_request, DEFAULT_PARAMS)
    blob = bytearray(frame.ciphertexts[0])
    for _ in range(data.draw(st.integers(1, 8))):
        # Corrupt SEAL's metadata and the start of the compressed body, where it matters most.
        i = data.draw(st.integers(16, min(len(blob) - 1, 400)))
        blob[i] = data.draw(st.integers(0, 255))
    request = encode_request(Layout.COEFF, 1, 3, [bytes(blob)])
    with contextlib.suppress(CkksError):
        evaluator.evaluate(request, MODEL)
    _ok(evaluator, coeff_client, Layout.COEFF)  # still serving


@pytest.mark.parametrize("layout", list(Layout))
def test_both_wire_forms_give_the_same_logits(evaluator, row_client, layout):
    evaluator.add_context(row_client.public_bytes())
    bodies = {wire: row_client.encrypt(X, layout, wire=wire) for wire in Wire}
    assert len(bodies[Wire.COMPACT]) < 0.5 * len(bodies[Wire.FAST])
    for body in bodies.values():
        result = evaluator.evaluate(body, MODEL, context_id=row_client.context_id)
        assert np.abs(row_client.decrypt_logits(result.response) - EXPECTED).max() < 1e-4
