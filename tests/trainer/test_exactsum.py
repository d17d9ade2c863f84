from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.common.secure_aggregation.ndarrays_arithmetic import (
    factor_combine,
    factor_extract,
    parameters_addition,
    parameters_mod,
)
from flwr.common.secure_aggregation.quantization import dequantize, quantize

from trainer.exactsum import MODULUS_RANGE, ExactSumCodec, SumOverflowError


def _through_flower_secaggplus(codec: ExactSumCodec, vectors: list[np.ndarray]) -> np.ndarray:
    """The arithmetic of flwr 1.41's secaggplus_mod + SecAggPlusWorkflow, minus the masks.

    Masks cancel modulo M, so the server sees exactly this sum of quantised vectors.
    """
    c, t = codec.clipping_range, codec.quantization_range
    total = None
    for v in vectors:
        q_ratio = round(1.0 * t)  # num_examples / max_weight = 1
        quantised = factor_combine(q_ratio, quantize([v * (q_ratio / t)], c, t))
        quantised = [a.astype(np.int64) for a in quantised]  # as after adding int64 masks
        total = quantised if total is None else parameters_addition(total, quantised)
    assert total is not None
    total = parameters_mod(total, MODULUS_RANGE)
    q_total, rest = factor_extract(total)
    out = dequantize(rest, c, t)[0]
    out += -(len(vectors) - 1) * c
    out *= t / q_total
    return out


def _random_values(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=n) * 10.0 ** rng.integers(-12, 9, size=n)


@pytest.mark.parametrize("n_nodes", [2, 3, 5])
def test_sums_through_flower_quantisation_equal_the_float_sum(n_nodes: int) -> None:
    rng = np.random.default_rng(n_nodes)
    codec = ExactSumCodec(n_nodes)
    vectors = [_random_values(rng, 300) for _ in range(n_nodes)]
    mean = _through_flower_secaggplus(codec, [codec.encode(v) for v in vectors])
    got = codec.decode_mean(mean, n_nodes)
    exact = np.array([math.fsum(col) for col in zip(*vectors, strict=True)])
    scale = np.max(np.abs(np.array(vectors)), axis=0)
    # fixed point resolution 2**-64 absolute plus one float64 rounding of the result
    assert np.all(np.abs(got - exact) <= 1e-15 * scale + 2.0**-60)


def test_flower_default_quantisation_is_far_from_exact() -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.normal(size=50) for _ in range(3)]
    c, t = 8.0, 2**22
    total = None
    for v in vectors:
        q = [a.astype(np.int64) for a in factor_combine(t, quantize([v], c, t))]
        total = q if total is None else parameters_addition(total, q)
    assert total is not None
    q_total, rest = factor_extract(parameters_mod(total, MODULUS_RANGE))
    mean = (dequantize(rest, c, t)[0] - 2 * c) * t / q_total
    assert np.max(np.abs(mean * 3 - np.sum(vectors, axis=0))) > 1e-7


def test_encoded_digits_lie_on_the_secaggplus_grid_inside_the_clipping_range() -> None:
    codec = ExactSumCodec(3)
    enc = codec.encode(np.array([1e11, -3.5, 1e-9, 0.0]))
    assert enc.shape == (codec.encoded_size(4),)
    assert np.all(np.abs(enc) <= codec.clipping_range / 4)
    np.testing.assert_array_equal(np.round(enc / codec.grid) * codec.grid, enc)


def test_codec_quantisation_range_leaves_room_for_every_node_below_the_modulus() -> None:
    for n in range(1, 64):
        codec = ExactSumCodec(n)
        assert n * codec.quantization_range < MODULUS_RANGE


def test_encode_rejects_a_value_beyond_the_fixed_point_range() -> None:
    with pytest.raises(SumOverflowError, match="exceeds"):
        ExactSumCodec(3).encode(np.array([2.0**48]))


def test_encode_rejects_nan() -> None:
    with pytest.raises(SumOverflowError, match="not finite"):
        ExactSumCodec(3).encode(np.array([np.nan]))


def test_decode_rejects_a_length_that_is_not_a_multiple_of_the_digits() -> None:
    codec = ExactSumCodec(3)
    with pytest.raises(ValueError, match="multiple"):
        codec.decode_sum(np.zeros(codec.n_digits + 1))


def test_codec_rejects_zero_nodes() -> None:
    with pytest.raises(ValueError, match="n_nodes"):
        ExactSumCodec(0)
