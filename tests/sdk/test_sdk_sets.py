"""The SDK's choice of a named CKKS parameter set from a subnet's JSON, and its refusals."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from ckks import COMPACT, PARAM_SETS, Layout, SetClient, encode_response
from clients.sdk import InvalidInput, ServerError
from clients.sdk._encrypted import set_of
from clients.sdk._gateway import _take_answer
from core.protocol import RECEIPT_HEADER


def subnet(**changes):
    body = {
        "feature_names": ["a", "b"],
        "ckks_parameter_sets": {name: s.to_dict() for name, s in PARAM_SETS.items()},
        "feature_standardisation": {"mean": [1.0, 2.0], "scale": [2.0, 4.0]},
    }
    body.update(changes)
    return body


def test_a_set_the_subnet_offers_comes_with_its_standardisation():
    pset, std = set_of(subnet(), "compact", 1)
    assert pset is COMPACT
    np.testing.assert_allclose(std.standardise([[3.0, 6.0]]), [[1.0, 1.0]])


def test_without_a_standardisation_the_rows_go_as_they_are():
    _, std = set_of(subnet(feature_standardisation=None), "precise", 1)
    np.testing.assert_allclose(std.standardise([[3.0, 6.0]]), [[3.0, 6.0]])


def test_an_unknown_set_name_is_invalid_input():
    with pytest.raises(InvalidInput, match="unknown CKKS parameter set"):
        set_of(subnet(), "tiny", 1)


def test_a_set_the_subnet_does_not_offer_is_a_server_error():
    with pytest.raises(ServerError, match="does not offer compact"):
        set_of(subnet(ckks_parameter_sets={}), "compact", 1)


def test_a_set_offered_with_other_numbers_is_refused():
    sets = subnet()["ckks_parameter_sets"]
    sets["compact"] = {**sets["compact"], "coeff_mod_bit_sizes": [30, 20, 14]}
    with pytest.raises(ServerError, match="other numbers"):
        set_of(subnet(ckks_parameter_sets=sets), "compact", 1)


def test_an_unusable_standardisation_is_refused():
    with pytest.raises(ServerError, match="standardisation"):
        set_of(
            subnet(feature_standardisation={"mean": [0.0, 0.0], "scale": [1.0, 0.0]}), "compact", 1
        )


def test_an_answer_that_does_not_decrypt_is_a_server_error_and_a_receipt_is_kept():
    client = SetClient(COMPACT)
    logits, receipts = np.zeros(3), []
    garbage = httpx.Response(200, content=b"2PMR" + b"\0" * 12, headers={RECEIPT_HEADER: "r1"})
    with pytest.raises(ServerError, match="Undecryptable response"):
        _take_answer(client, garbage, slice(0, 1), logits, receipts)
    assert receipts == []
    # a well-formed answer of another row count than the request's is refused too
    two = [client.encrypt_ciphertext(np.ones(3)) for _ in range(2)]
    answer = httpx.Response(200, content=encode_response(Layout.COEFF, 2, two, param_set=1))
    with pytest.raises(ServerError, match="response has 2 rows, expected 1"):
        _take_answer(client, answer, slice(0, 1), logits, receipts)
    ok = httpx.Response(
        200,
        content=encode_response(Layout.COEFF, 2, two, param_set=1),
        headers={RECEIPT_HEADER: "r2"},
    )
    _take_answer(client, ok, slice(1, 3), logits, receipts)
    np.testing.assert_allclose(logits, [0.0, 1.0, 1.0], atol=1e-3)  # coefficient 0: z_0 = 1
    assert receipts == ["r2"]
