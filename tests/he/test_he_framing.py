"""Strict parsing of request, response and context frames; fuzzed with hypothesis."""

import contextlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckks import (
    DEFAULT_PARAMS,
    BatchTooLarge,
    CkksError,
    FrameLimits,
    FrameTooLarge,
    FramingError,
    Layout,
    Section,
    Wire,
    check_seal_header,
    encode_context,
    encode_request,
    encode_response,
    parse_context,
    parse_request,
    parse_response,
    uncompressed,
)
from gateway.he import HeEvaluator, LinearModel

REQ_HEADER = struct.Struct("<4sBBHIII")


@pytest.fixture(scope="module")
def column_request(column_client):
    return column_client.encrypt(np.arange(6, dtype=float).reshape(2, 3))


@pytest.fixture(scope="module")
def one_ciphertext(column_client):
    """One seeded, zstd-compressed ciphertext (``Wire.COMPACT``)."""
    request = column_client.encrypt(np.ones((2, 1)), wire=Wire.COMPACT)
    return bytes(parse_request(request, DEFAULT_PARAMS).ciphertexts[0])


def _header(layout=2, n_rows=2, n_features=3, n_cts=2, magic=b"2PMQ", version=1, flags=0):
    return REQ_HEADER.pack(magic, version, layout, flags, n_rows, n_features, n_cts)


def test_a_request_frame_round_trips(column_request):
    frame = parse_request(column_request, DEFAULT_PARAMS)
    assert (frame.layout, frame.n_rows, frame.n_features) == (Layout.COLUMN, 2, 3)
    assert len(frame.ciphertexts) == 2  # features (0, 1) and (2,)
    again = encode_request(frame.layout, frame.n_rows, frame.n_features, frame.ciphertexts)
    assert again == column_request


def test_seeded_ciphertexts_are_about_half_a_full_one(one_ciphertext):
    full_bytes = 2 * 2 * 8192 * 8
    assert len(one_ciphertext) < 0.5 * full_bytes
    assert check_seal_header(one_ciphertext) is None


def test_fast_ciphertexts_are_uncompressed_and_full_size(column_request):
    (blob, _) = parse_request(column_request, DEFAULT_PARAMS).ciphertexts
    compr_mode = blob[5]  # header: magic u16, size u8, major u8, minor u8, compr_mode u8
    assert compr_mode == 0  # SEAL's "none"
    assert 2 * 2 * 8192 * 8 < len(blob) < 2 * 2 * 8192 * 8 + 1024


def test_uncompressed_keeps_the_object_and_is_idempotent(one_ciphertext, column_client):
    plain = uncompressed(one_ciphertext)
    assert plain[5] == 0 and check_seal_header(plain) is None
    assert len(plain) > len(one_ciphertext)
    assert uncompressed(plain) == plain
    request = encode_request(Layout.COLUMN, 2, 1, [plain])
    response = HeEvaluator(DEFAULT_PARAMS).evaluate(request, LinearModel.from_arrays([2.0], 0.5))
    assert np.allclose(column_client.decrypt_logits(response.response), 2.5, atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:8], "shorter than its header"),
        (lambda b: b[:5] + bytes([1]) + b[6:], "not zstd"),  # zlib: not what SEAL writes here
        (lambda b: b[:16] + bytes(len(b) - 16), "does not decompress"),
        (lambda b: b"XX" + b[2:], "bad magic"),
    ],
)
def test_uncompressed_refuses_what_is_not_a_zstd_seal_blob(one_ciphertext, mutate, match):
    with pytest.raises(ValueError, match=match):
        uncompressed(mutate(one_ciphertext))


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda b: b"XXXX" + b[4:], FramingError, "bad magic"),
        (lambda b: _header(version=2) + b[REQ_HEADER.size :], FramingError, "version"),
        (lambda b: _header(flags=0x100) + b[REQ_HEADER.size :], FramingError, "flags"),
        (lambda b: _header(flags=9) + b[REQ_HEADER.size :], FramingError, "parameter set 9"),
        (lambda b: _header(flags=1) + b[REQ_HEADER.size :], FramingError, "coeff layout only"),
        (lambda b: _header(layout=9) + b[REQ_HEADER.size :], FramingError, "unknown layout"),
        (lambda b: _header(n_rows=0) + b[REQ_HEADER.size :], FramingError, "at least one row"),
        (lambda b: _header(n_cts=3) + b[REQ_HEADER.size :], FramingError, "needs 2 ciphertexts"),
        (lambda b: _header(n_rows=4097) + b[REQ_HEADER.size :], BatchTooLarge, "4096 slots"),
        (lambda b: b[:10], FramingError, "shorter than its header"),
        (lambda b: b[: REQ_HEADER.size + 5], FramingError, "length table"),
        (lambda b: b[:-1], FramingError, "truncated"),
        (lambda b: b + b"\x00", FramingError, "trailing"),
        (
            lambda b: b[: REQ_HEADER.size + 8] + b"\x00" + b[REQ_HEADER.size + 9 :],
            FramingError,
            "bad magic",
        ),
    ],
    ids=[
        "magic",
        "version",
        "flags",
        "unknown-param-set",
        "param-set-needs-coeff",
        "layout",
        "zero-rows",
        "count",
        "too-many-rows",
        "short",
        "table",
        "truncated",
        "trailing",
        "seal-magic",
    ],
)
def test_parse_request_rejects_malformed_frames(column_request, mutate, error, match):
    with pytest.raises(error, match=match):
        parse_request(mutate(column_request), DEFAULT_PARAMS)


def test_parse_request_rejects_an_oversized_frame_before_reading_it(column_request):
    with pytest.raises(FrameTooLarge, match="exceeds"):
        parse_request(column_request, DEFAULT_PARAMS, FrameLimits(max_request_bytes=1000))


def test_parse_request_rejects_an_oversized_ciphertext(column_request):
    with pytest.raises(FrameTooLarge, match="ciphertext 0"):
        parse_request(column_request, DEFAULT_PARAMS, FrameLimits(max_ciphertext_bytes=1000))


def test_parse_request_limits_rows_per_row_layout_request(one_ciphertext):
    frame = encode_request(Layout.COEFF, 3, 3, [one_ciphertext] * 3)
    with pytest.raises(BatchTooLarge, match="per coeff-layout request"):
        parse_request(frame, DEFAULT_PARAMS, FrameLimits(max_rows_per_row_request=2))


@pytest.mark.parametrize("layout", [Layout.ROW, Layout.COEFF])
def test_parse_request_rejects_more_row_features_than_a_ciphertext_holds(one_ciphertext, layout):
    frame = encode_request(layout, 1, 8193, [one_ciphertext])
    with pytest.raises(BatchTooLarge, match="8192"):
        parse_request(frame, DEFAULT_PARAMS)


def test_seal_header_size_must_match_the_part_length(one_ciphertext):
    bad = one_ciphertext[:8] + struct.pack("<Q", len(one_ciphertext) + 1) + one_ciphertext[16:]
    assert "bytes" in (check_seal_header(bad) or "")


def test_parse_response_rejects_counts_that_do_not_fit_the_layout(one_ciphertext):
    frame = encode_response(Layout.COLUMN, 5, [one_ciphertext, one_ciphertext])
    with pytest.raises(FramingError, match="cannot hold"):
        parse_response(frame)
    with pytest.raises(FrameTooLarge):
        parse_response(encode_response(Layout.COLUMN, 5, [one_ciphertext]), max_bytes=100)


def test_parse_context_rejects_duplicate_unknown_and_missing_sections(column_client):
    params_blob = bytes(parse_context(column_client.public_bytes()).sections[Section.PARAMETERS])
    twice = encode_context(Layout.COLUMN, 0, [(Section.PARAMETERS, params_blob)] * 2)
    with pytest.raises(FramingError, match="twice"):
        parse_context(twice)
    with pytest.raises(FramingError, match="no encryption-parameters"):
        parse_context(encode_context(Layout.COLUMN, 0, []))
    unknown = bytearray(encode_context(Layout.COLUMN, 0, [(Section.PARAMETERS, params_blob)]))
    unknown[14] = 42  # first section kind
    with pytest.raises(FramingError, match="unknown context section"):
        parse_context(bytes(unknown))
    with pytest.raises(FrameTooLarge):
        parse_context(column_client.public_bytes(), FrameLimits(max_context_bytes=10))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_parsers_raise_only_codec_errors_on_arbitrary_bytes(data):
    for parse in (
        lambda d: parse_request(d, DEFAULT_PARAMS),
        parse_response,
        parse_context,
    ):
        with contextlib.suppress(CkksError):
            parse(data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_parse_request_raises_only_codec_errors_on_mutated_frames(column_request, data):
    frame = bytearray(column_request)
    head = min(len(frame), REQ_HEADER.size + 8 + 64)  # header, table, SEAL headers' start
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, head - 1))
        frame[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(frame))))
    blob = bytes(frame if cut is None else frame[:cut])
    try:
        parsed = parse_request(blob, DEFAULT_PARAMS)
    except CkksError:
        return
    assert parsed.n_rows >= 1
