"""The SDK's choice of a named CKKS parameter set from a subnet's JSON, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ckks import COMPACT, PARAM_SETS
from clients.sdk import InvalidInput, ServerError
from clients.sdk._encrypted import set_of


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
