"""The named CKKS parameter sets (compact, precise): sizes, errors, SEAL 4.1/4.3, refusals."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest
import tenseal.sealapi as seal
import zstandard
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ckks import (
    COMPACT,
    DEFAULT_PARAMS,
    PARAM_SETS,
    PRECISE,
    AffineModel,
    BatchTooLarge,
    CiphertextRejected,
    Layout,
    SealVersionUnsupported,
    SetClient,
    ShapeMismatch,
    ciphertext_to_version,
    encode_request,
    load_into,
    parse_response,
    save_bytes,
    seal_minor_version,
    uncompressed,
)
from gateway.he import HeEvaluator, LinearModel, SealVersionNotSupported, measure_logit_error

HEADER = struct.Struct("<HBBBBHQ")
BOUNDS = {"compact": 2e-3, "precise": 1e-4}


@pytest.fixture(scope="module")
def raw_model():
    """The breast-cancer model in raw units, with its standardisation, as a card states it."""
    x, y = load_breast_cancer(return_X_y=True)
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(max_iter=5000).fit(scaler.transform(x), y)
    w = lr.coef_[0] / scaler.scale_
    b = lr.intercept_[0] - w @ scaler.mean_
    model = LinearModel.from_arrays(w, b, scaler.mean_, scaler.scale_)
    return x, model, x @ w + b


@pytest.fixture(scope="module")
def evaluator():
    return HeEvaluator(DEFAULT_PARAMS)


@pytest.mark.parametrize("name", ["compact", "precise"])
@pytest.mark.parametrize("minor", [3, 1], ids=["seal-4.3", "seal-4.1"])
def test_a_set_answers_breast_cancer_rows_within_its_bound_and_size(
    raw_model, evaluator, name, minor
):
    x, model, exact = raw_model
    pset = PARAM_SETS[name]
    client = SetClient(pset, seal_minor=minor)
    affine = model.affine()
    rows = range(0, x.shape[0], 7)  # 82 rows, every 7th
    errors, up, down = [], [], []
    for i in rows:
        request = client.encrypt(affine.standardise(x[i : i + 1]))
        answer = evaluator.evaluate(request, model)
        frame = parse_response(answer.response)
        assert frame.param_set == pset.set_id
        assert seal_minor_version(frame.ciphertexts[0]) == minor  # answered in the client's version
        up.append(len(request))
        down.append(len(answer.response))
        errors.append(client.decrypt_logits(answer.response, expected_rows=1)[0] - exact[i])
    assert np.abs(errors).max() <= BOUNDS[name]
    if name == "compact":
        assert max(up) <= 16_000 and max(down) <= 16_000
    else:
        assert max(up) <= 16_000 and max(down) <= 32_000


def test_a_batch_of_rows_travels_in_one_request(raw_model, evaluator):
    x, model, exact = raw_model
    client = SetClient(COMPACT)
    request = client.encrypt(model.affine().standardise(x[:10]))
    answer = evaluator.evaluate(request, model)
    got = client.decrypt_logits(answer.response, expected_rows=10)
    assert np.abs(got - exact[:10]).max() <= BOUNDS["compact"]


@pytest.mark.parametrize("name", ["compact", "precise"])
def test_the_measured_error_over_the_input_box_is_within_the_set_bound(raw_model, name):
    _, model, _ = raw_model
    worst = measure_logit_error(PARAM_SETS[name], model.affine(), rows=192)
    assert 0 < worst <= BOUNDS[name], worst


@pytest.mark.parametrize("name", ["compact", "precise"])
def test_a_model_with_small_weights_is_evaluated_not_refused_by_seal(evaluator, name):
    # L = |b| + 32 ||w|| = 0.06: the answer scale HEADROOM q0 / (2 L) would exceed q0, which
    # SEAL refuses with a ValueError ("scale out of bounds") that no handler turns into a 4xx.
    model = LinearModel.from_arrays([1e-3, -1e-3, 5e-4], 0.01)
    pset = PARAM_SETS[name]
    client = SetClient(pset)
    rows = np.array([[1.0, 2.0, -3.0], [0.0, 0.0, 0.0], [10.0, -10.0, 5.0]])
    answer = evaluator.evaluate(client.encrypt(rows), model)
    got = client.decrypt_logits(answer.response, expected_rows=3)
    exact = rows @ np.array([1e-3, -1e-3, 5e-4]) + 0.01
    assert np.abs(got - exact).max() <= BOUNDS[name]
    assert 0 < measure_logit_error(pset, model.affine(), rows=16) <= BOUNDS[name]


def test_the_standardised_model_computes_the_raw_logit(raw_model):
    x, model, exact = raw_model
    affine = model.affine()
    z = affine.standardise(x)
    np.testing.assert_allclose(z @ np.asarray(affine.weights) + affine.intercept, exact, atol=1e-9)
    assert affine.logit_bound(32.0) >= np.abs(exact).max()


def test_rows_outside_the_input_box_are_refused_before_encryption():
    client = SetClient(COMPACT)
    with pytest.raises(ShapeMismatch, match=r"within 32"):
        client.encrypt(np.array([[24.0, 24.0]]))
    client.encrypt(np.array([[22.0, 22.0]]))  # 31.1 from the mean: inside
    with pytest.raises(ShapeMismatch, match="non-finite"):
        client.encrypt(np.array([[0.0, np.nan]]))


@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "full"])
def test_version_rewriting_round_trips_exactly(raw_model, evaluator, seeded):
    client = SetClient(COMPACT)
    blob = client.encrypt_ciphertext(np.linspace(-1, 1, 30))
    if not seeded:  # a full ciphertext: what the gateway answers
        answer = evaluator.evaluate(client.encrypt(np.zeros((1, 30))), raw_model[1]).response
        blob = bytes(parse_response(answer).ciphertexts[0])
    native = uncompressed(blob)
    old = ciphertext_to_version(blob, 1, compress=False)
    assert seal_minor_version(old) == 1 and len(old) == len(native)
    # the outer header and every nested header changed, nothing else
    differing = [i for i, (a, b) in enumerate(zip(old, native, strict=True)) if a != b]
    assert differing[0] == 4 and all(i in (4, 89 + 4, 32881 + 4) for i in differing)
    assert ciphertext_to_version(old, 3, compress=False) == native
    compressed = ciphertext_to_version(old, 1, compress=True)
    assert HEADER.unpack_from(compressed, 0)[4] == 2  # zstd
    assert ciphertext_to_version(compressed, 3, compress=False) == native


def test_a_zlib_ciphertext_is_read():
    client = SetClient(COMPACT)
    native = uncompressed(client.encrypt_ciphertext(np.ones(30)))
    body = zlib.compress(native[16:])
    magic, hs, major, minor, _, reserved, _ = HEADER.unpack_from(native, 0)
    blob = HEADER.pack(magic, hs, major, minor, 1, reserved, 16 + len(body)) + body
    assert ciphertext_to_version(blob, 3, compress=False) == native


def _with_minor(blob: bytes, minor: int) -> bytes:
    raw = bytearray(uncompressed(blob))
    raw[4] = minor
    return bytes(raw)


@pytest.mark.parametrize("minor", [0, 2, 4])
def test_a_foreign_seal_version_is_refused(minor):
    blob = SetClient(COMPACT).encrypt_ciphertext(np.ones(30))
    with pytest.raises(SealVersionUnsupported, match=rf"4\.{minor} is not supported"):
        ciphertext_to_version(_with_minor(blob, minor), 3, compress=False)


def test_a_nested_header_that_disagrees_with_the_outer_one_is_malformed():
    raw = bytearray(uncompressed(SetClient(COMPACT).encrypt_ciphertext(np.ones(30))))
    raw[89 + 4] = 1  # data array says 4.1, the outer header 4.3
    with pytest.raises(ValueError, match=r"says version 4\.1"):
        ciphertext_to_version(bytes(raw), 1, compress=False)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-5],
        lambda raw: raw[:60],
        lambda raw: raw[:89] + b"\x00" * 16 + raw[105:],
    ],
    ids=["truncated", "members-only", "no-nested-header"],
)
def test_a_malformed_ciphertext_is_refused(damage):
    raw = uncompressed(SetClient(COMPACT).encrypt_ciphertext(np.ones(30)))
    broken = bytearray(damage(raw))
    struct.pack_into("<Q", broken, 8, len(broken))  # keep the outer size field honest
    with pytest.raises(ValueError):
        ciphertext_to_version(bytes(broken), 3, compress=False)


def _seeded_raw() -> bytearray:
    """A seeded compact ciphertext, uncompressed: header 16, members 73, data array at 89."""
    return bytearray(uncompressed(SetClient(COMPACT).encrypt_ciphertext(np.ones(30))))


def _outer(raw: bytearray, mode: int, payload: bytes) -> bytes:
    return HEADER.pack(0xA15E, 16, 4, raw[4], mode, 0, 16 + len(payload)) + payload


def _short_array(raw: bytearray) -> bytes:
    struct.pack_into("<Q", raw, 89 + 8, 16)  # the data array's size field: header only
    return bytes(raw)


def _miscounted(raw: bytearray) -> bytes:
    (count,) = struct.unpack_from("<Q", raw, 89 + 16)
    struct.pack_into("<Q", raw, 89 + 16, count + 1)
    return bytes(raw)


def _three_parts(raw: bytearray) -> bytes:
    (array_size,) = struct.unpack_from("<Q", raw, 89 + 8)
    seed = raw[89 + array_size :]
    return _outer(raw, 0, bytes(raw[16:] + seed))


def _compressed_nested(raw: bytearray) -> bytes:
    raw[89 + 5] = 2  # the data array's own header says zstd
    return bytes(raw)


def _bad_zstd(raw: bytearray) -> bytes:
    return _outer(raw, 2, b"\x28\xb5\x2f\xfd" + b"\x00" * 40)


def _truncated_zlib(raw: bytearray) -> bytes:
    return _outer(raw, 1, zlib.compress(bytes(raw[16:]))[:-100])


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_short_array, "data array is too short"),
        (_miscounted, "data array size does not match its count"),
        (_three_parts, "more parts than data and seed"),
        (_compressed_nested, "data array has a bad header"),
        (_bad_zstd, "does not decompress"),
        (_truncated_zlib, "zlib stream longer than allowed or truncated"),
    ],
)
def test_each_structural_refusal_of_the_version_rewriter_says_why(damage, says):
    with pytest.raises(ValueError, match=says):
        ciphertext_to_version(damage(_seeded_raw()), 3, compress=False)


def test_the_rewriter_writes_only_4_1_and_4_3():
    with pytest.raises(SealVersionUnsupported, match=r"4\.2 is not written here"):
        ciphertext_to_version(bytes(_seeded_raw()), 2, compress=False)


def _lower_level(blob: bytes) -> bytes:
    ct = load_into(seal.Ciphertext(), COMPACT.context(), uncompressed(blob))
    seal.Evaluator(COMPACT.context()).mod_switch_to_next_inplace(ct)
    return save_bytes(ct)


def _three_polynomials(blob: bytes) -> bytes:
    ct = load_into(seal.Ciphertext(), COMPACT.context(), uncompressed(blob))
    seal.Evaluator(COMPACT.context()).square_inplace(ct)  # size 3, top level, scale 2^32
    return save_bytes(ct)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_lower_level, "not at the top level of the compact set"),
        (_three_polynomials, "not a fresh two-part CKKS ciphertext"),
    ],
)
def test_the_gateway_refuses_a_ciphertext_that_is_not_fresh(raw_model, evaluator, change, says):
    blob = change(SetClient(COMPACT).encrypt_ciphertext(np.ones(30)))
    request = encode_request(Layout.COEFF, 1, 30, [blob], param_set=COMPACT.set_id)
    with pytest.raises(CiphertextRejected, match=says):
        evaluator.evaluate(request, raw_model[1])


def test_the_gateway_refuses_a_ciphertext_at_another_input_scale(raw_model, evaluator):
    other = SetClient(dataclasses.replace(COMPACT, input_scale_bits=17))  # same ring and primes
    request = other.encrypt(np.ones((1, 30)))
    with pytest.raises(CiphertextRejected, match=r"expected 2\^16"):
        evaluator.evaluate(request, raw_model[1])


def test_the_gateway_refuses_a_foreign_version_with_its_own_problem(raw_model, evaluator):
    _, model, _ = raw_model
    client = SetClient(COMPACT)
    ct = _with_minor(client.encrypt_ciphertext(np.ones(30)), 2)
    request = encode_request(Layout.COEFF, 1, 30, [ct], param_set=COMPACT.set_id)
    with pytest.raises(SealVersionUnsupported):
        evaluator.evaluate(request, model)
    from gateway.he import translate

    problem = translate(SealVersionUnsupported("x"))
    assert isinstance(problem, SealVersionNotSupported) and problem.status_code == 422
    assert problem.extra == {"supported_seal_versions": ["4.1", "4.3"]}


def test_the_gateway_refuses_mixed_versions_and_other_sets_ciphertexts(raw_model, evaluator):
    _, model, _ = raw_model
    new, old = SetClient(COMPACT), SetClient(COMPACT, seal_minor=1)
    mixed = [new.encrypt_ciphertext(np.ones(30)), old.encrypt_ciphertext(np.ones(30))]
    request = encode_request(Layout.COEFF, 2, 30, mixed, param_set=COMPACT.set_id)
    with pytest.raises(CiphertextRejected, match="mix SEAL versions"):
        evaluator.evaluate(request, model)
    foreign = SetClient(PRECISE).encrypt_ciphertext(np.ones(30))
    request = encode_request(Layout.COEFF, 1, 30, [foreign], param_set=COMPACT.set_id)
    with pytest.raises(CiphertextRejected):
        evaluator.evaluate(request, model)


def test_a_ciphertext_with_a_coefficient_above_its_prime_is_refused_by_seal(raw_model, evaluator):
    _, model, _ = raw_model
    ct = bytearray(uncompressed(SetClient(COMPACT).encrypt_ciphertext(np.ones(30))))
    ct[200:208] = b"\xff" * 8  # a coefficient above its prime
    request = encode_request(Layout.COEFF, 1, 30, [bytes(ct)], param_set=COMPACT.set_id)
    with pytest.raises(CiphertextRejected, match="does not load"):
        evaluator.evaluate(request, model)


def test_the_sets_need_no_more_than_128_bit_security_allows():
    for pset in PARAM_SETS.values():
        assert sum(pset.coeff_mod_bit_sizes) <= 54  # SEAL's MaxBitCount(2048, tc128)
        assert pset.to_dict()["seal_versions"] == ["4.1", "4.3"]


def test_an_identity_standardisation_is_used_when_the_card_has_none():
    model = LinearModel.from_arrays([1.0, -2.0], 0.5)
    affine = model.affine()
    assert affine.weights == (1.0, -2.0) and affine.intercept == 0.5
    assert affine.mean == (0.0, 0.0) and affine.scale == (1.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        AffineModel.from_raw([1.0], 0.0, [0.0], [0.0])


def test_zstd_answers_are_what_seal_writes():
    blob = SetClient(COMPACT).encrypt_ciphertext(np.ones(30))
    assert HEADER.unpack_from(blob, 0)[4] == 2
    assert zstandard.ZstdDecompressor().decompress(blob[16:], max_output_size=1 << 20)


def test_a_pool_worker_measures_every_sets_error_off_the_event_loop(raw_model):
    import asyncio

    from gateway.he import HePool, HePoolSettings

    _, model, _ = raw_model

    async def go():
        async with HePool(DEFAULT_PARAMS, HePoolSettings(workers=1, max_queue=0)) as pool:
            return await pool.measure_sets(model.affine())

    errors = asyncio.run(go())
    assert set(errors) == set(PARAM_SETS)
    assert 0 < errors["compact"] <= BOUNDS["compact"] and 0 < errors["precise"] <= BOUNDS["precise"]


@pytest.mark.parametrize(
    ("rows", "error", "says"),
    [
        (np.ones(30), ShapeMismatch, r"shape \(n_rows, n_features\), got \(30,\)"),
        (np.ones((1, 2049)), ShapeMismatch, "2049 features exceed N=2048"),
        (np.zeros((65, 3)), BatchTooLarge, "65 rows exceed 64 per request"),
    ],
    ids=["one-dimensional", "too-wide", "too-many-rows"],
)
def test_the_set_client_refuses_rows_it_cannot_encrypt(rows, error, says):
    with pytest.raises(error, match=says):
        SetClient(COMPACT).encrypt(rows)


def test_the_set_client_refuses_an_answer_for_another_set_row_count_or_key(raw_model, evaluator):
    mine, other_key = SetClient(COMPACT), SetClient(COMPACT)
    answer = evaluator.evaluate(mine.encrypt(np.zeros((2, 30))), raw_model[1]).response
    with pytest.raises(CiphertextRejected, match="answer is for parameter set 1, not precise"):
        SetClient(PRECISE).decrypt_logits(answer)
    with pytest.raises(CiphertextRejected, match="response has 2 rows, expected 3"):
        mine.decrypt_logits(answer, expected_rows=3)
    broken = bytearray(answer)
    frame = parse_response(answer)
    start = len(answer) - sum(len(c) for c in frame.ciphertexts)
    broken[start + 20 : start + 24] = b"\xff\xff\xff\xff"  # inside the first zstd frame
    with pytest.raises(CiphertextRejected, match="answer ciphertext does not decrypt"):
        mine.decrypt_logits(bytes(broken))
    # another key decrypts to noise, not to an error: only the key holder learns the logit
    assert np.abs(other_key.decrypt_logits(answer) - mine.decrypt_logits(answer)).max() > 1.0


def test_a_standardisation_of_another_length_is_refused():
    with pytest.raises(ValueError, match="standardisation lengths differ"):
        AffineModel.from_raw([1.0, 2.0], 0.0, [0.0], [1.0])


def test_the_gateway_refuses_a_set_request_for_a_model_with_no_weights(evaluator):
    model = LinearModel.from_arrays([0.0, 0.0, 0.0], 0.5)
    request = SetClient(COMPACT).encrypt(np.ones((1, 3)))
    with pytest.raises(ShapeMismatch, match="weights are all zero"):
        evaluator.evaluate(request, model)


def test_the_gateway_refuses_a_set_request_for_a_model_with_an_unusable_standardisation(
    evaluator,
):
    model = LinearModel.from_arrays([1.0, 2.0, 3.0], 0.5, [0.0, 0.0, 0.0], [1.0, 0.0, 1.0])
    request = SetClient(COMPACT).encrypt(np.ones((1, 3)))
    with pytest.raises(ShapeMismatch, match="standardisation is unusable"):
        evaluator.evaluate(request, model)
