"""Layout choice, batch splitting and the context cache (pure client-side logic)."""

from __future__ import annotations

import numpy as np
import pytest

from ckks import (
    DEFAULT_PARAMS,
    ClientContext,
    FrameTooLarge,
    Layout,
    Wire,
    parse_request,
)
from clients.sdk import ServerError, choose_layout
from clients.sdk._encrypted import (
    ContextCache,
    as_matrix,
    choose_wire,
    params_of,
    split_rows,
)


@pytest.mark.parametrize(
    ("n_rows", "n_features", "offered", "expected"),
    [
        (1, 30, {"row", "column", "coeff"}, Layout.COEFF),
        (14, 30, {"row", "column", "coeff"}, Layout.COEFF),
        (15, 30, {"row", "column", "coeff"}, Layout.COLUMN),  # 15 ciphertexts either way: column
        (1, 30, {"row", "column"}, Layout.ROW),
        (1, 2, {"row", "column"}, Layout.COLUMN),  # one ciphertext either way
        (1, 3, {"row", "column"}, Layout.ROW),
        (2, 3, {"row", "column"}, Layout.COLUMN),
        (5000, 30, {"row"}, Layout.ROW),
        (1, 30, {"column"}, Layout.COLUMN),
    ],
)
def test_the_layout_with_fewer_ciphertexts_wins_and_ties_go_to_columns(
    n_rows: int, n_features: int, offered: set[str], expected: Layout
) -> None:
    assert choose_layout(n_rows, n_features, offered) is expected


def test_a_subnet_offering_no_known_layout_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="No usable layout"):
        choose_layout(1, 3, {"diagonal"})


def test_batches_are_split_by_slots_for_columns_and_by_request_bytes_otherwise() -> None:
    assert split_rows(4097, Layout.COLUMN, DEFAULT_PARAMS) == [slice(0, 4096), slice(4096, 4097)]
    assert split_rows(65, Layout.COEFF, DEFAULT_PARAMS) == [
        slice(0, 31),
        slice(31, 62),
        slice(62, 65),
    ]
    assert split_rows(1, Layout.ROW, DEFAULT_PARAMS) == [slice(0, 1)]


def test_the_largest_split_fits_the_gateways_request_bound_uncompressed() -> None:
    (part, *_) = split_rows(100, Layout.COEFF, DEFAULT_PARAMS)
    x = np.ones((part.stop - part.start, 3))
    client = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COEFF)
    wire = choose_wire(Layout.COEFF, 3, DEFAULT_PARAMS)
    assert wire is Wire.FAST
    body = client.encrypt(x, Layout.COEFF, wire=wire)
    assert parse_request(body, DEFAULT_PARAMS).n_rows == part.stop - part.start
    with pytest.raises(FrameTooLarge):  # one more row would not have fitted
        parse_request(client.encrypt(np.ones((part.stop + 1, 3)), Layout.COEFF), DEFAULT_PARAMS)


def test_wide_column_batches_fall_back_to_the_compact_wire() -> None:
    assert choose_wire(Layout.COLUMN, 30, DEFAULT_PARAMS) is Wire.FAST  # 15 x 262 KB
    assert choose_wire(Layout.COLUMN, 64, DEFAULT_PARAMS) is Wire.COMPACT  # 32 x 262 KB > 8 MiB


def test_advertised_parameters_are_checked_not_trusted() -> None:
    params, layouts = params_of(DEFAULT_PARAMS.to_dict(), 1)
    assert params == DEFAULT_PARAMS and layouts == {"row", "column", "coeff"}
    insecure = {**DEFAULT_PARAMS.to_dict(), "coeff_mod_bit_sizes": [60, 60, 60, 60]}
    with pytest.raises(ServerError, match="128-bit"):
        params_of(insecure, 7)


def test_the_context_cache_reuses_contexts_and_evicts_the_least_recently_used() -> None:
    cache = ContextCache(max_entries=2)
    column = cache.get(DEFAULT_PARAMS, Layout.COLUMN, 30)
    assert cache.get(DEFAULT_PARAMS, Layout.COLUMN, 3) is column  # no keys depend on the width
    coeff = cache.get(DEFAULT_PARAMS, Layout.COEFF, 30)
    cache.get(DEFAULT_PARAMS, Layout.COLUMN, 30)  # column is now the most recent
    cache.get(DEFAULT_PARAMS, Layout.ROW, 3)  # evicts coeff
    assert len(cache) == 2
    assert cache.get(DEFAULT_PARAMS, Layout.COEFF, 30) is not coeff


def test_rows_as_arrays_must_be_two_dimensional_and_as_wide_as_the_features() -> None:
    assert as_matrix([[1, 2]], ("a", "b")).shape == (1, 2)
    assert as_matrix([[1, 2, 3]], ()).shape == (1, 3)  # no names advertised: width unchecked
    for bad in ([1, 2], [[1, 2], [3]], [["a", "b"]], [[float("inf"), 1]]):
        with pytest.raises(ValueError):
            as_matrix(bad, ("a", "b"))
