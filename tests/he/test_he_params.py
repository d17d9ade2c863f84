import pytest

from ckks import DEFAULT_PARAMS, CkksParams, InsecureParameters, Layout


def test_default_parameters_meet_128_bit_security_by_the_standard_table():
    DEFAULT_PARAMS.check()
    assert DEFAULT_PARAMS.max_bits_128() == 218  # HE standard, N=8192, classical 128-bit
    assert DEFAULT_PARAMS.total_bits == 160
    assert DEFAULT_PARAMS.slots == 4096


def test_check_rejects_a_modulus_larger_than_128_bit_security_allows():
    with pytest.raises(InsecureParameters, match="128-bit"):
        CkksParams(4096, (60, 40, 60), 40).check()  # 160 > 109 bits at N=4096


def test_check_rejects_a_scale_that_differs_from_the_rescale_prime():
    with pytest.raises(InsecureParameters, match="rescale prime"):
        CkksParams(8192, (60, 30, 60), 40).check()


def test_check_rejects_tenseal_tutorial_parameters_for_their_low_scale():
    with pytest.raises(InsecureParameters, match="inaccurate"):
        CkksParams(4096, (40, 20, 40), 20).check()


def test_check_rejects_a_first_prime_without_headroom_above_the_scale():
    with pytest.raises(InsecureParameters, match="above the scale"):
        CkksParams(8192, (45, 40, 60), 40).check()


def test_check_rejects_a_degree_that_is_not_a_power_of_two():
    with pytest.raises(InsecureParameters, match="power of two"):
        CkksParams(6000, (60, 40, 60), 40).check()


def test_parameters_round_trip_through_their_advertised_json():
    assert CkksParams.from_dict(DEFAULT_PARAMS.to_dict()) == DEFAULT_PARAMS


@pytest.mark.parametrize(
    "data",
    [
        {},
        {
            "scheme": "bfv",
            "poly_modulus_degree": 8192,
            "coeff_mod_bit_sizes": [60, 40, 60],
            "scale_bits": 40,
        },
        {"poly_modulus_degree": "8192", "coeff_mod_bit_sizes": [60, 40, 60], "scale_bits": 40},
        {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": [60, 40, 99], "scale_bits": 40},
        {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": "60,40,60", "scale_bits": 40},
    ],
)
def test_from_dict_rejects_incomplete_or_mistyped_parameters(data):
    with pytest.raises(InsecureParameters):
        CkksParams.from_dict(data)


def test_layout_labels_parse_and_unknown_labels_are_refused():
    assert [Layout.from_label(x.label) for x in Layout] == list(Layout)
    with pytest.raises(ValueError, match="unknown layout"):
        Layout.from_label("diagonal")
