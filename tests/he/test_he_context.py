"""Public-context validation for POST /v1/he/contexts."""

import hashlib

import pytest
import tenseal.sealapi as seal

from ckks import (
    DEFAULT_PARAMS,
    CkksParams,
    ClientContext,
    ContextRejected,
    FrameLimits,
    FramingError,
    Layout,
    Section,
    encode_context,
    galois_element,
    parse_context,
    save_bytes,
    seal_context,
)
from gateway.he import validate_public_context


def _sections(client):
    return {k: bytes(v) for k, v in parse_context(client.to_bytes()).sections.items()}


def _galois(steps):
    context = seal_context(DEFAULT_PARAMS)
    keygen = seal.KeyGenerator(context)
    return save_bytes(keygen.create_galois_keys([galois_element(s, 8192) for s in steps]))


@pytest.mark.parametrize("layout", [Layout.COLUMN, Layout.COEFF])
def test_keyless_layouts_upload_only_the_parameters(layout):
    client = ClientContext.create(layout=layout)
    info = validate_public_context(client.public_bytes(), DEFAULT_PARAMS)
    assert info.context_id == hashlib.sha256(client.public_bytes()).hexdigest() == client.context_id
    assert (info.layout, info.row_slots) == (layout, 0)
    assert info.size_bytes < 200


def test_a_row_context_carries_only_the_needed_galois_keys_and_is_small(row_client):
    info = validate_public_context(row_client.public_bytes(), DEFAULT_PARAMS)
    assert (info.layout, info.row_slots) == (Layout.ROW, 16)  # 30 features, 2 per slot
    assert info.size_bytes <= 2.5e6


def test_validate_rejects_a_context_that_carries_a_secret_key(row_client):
    with pytest.raises(ContextRejected, match="secret key"):
        validate_public_context(row_client.to_bytes(), DEFAULT_PARAMS)


def test_validate_rejects_parameters_other_than_the_advertised_ones():
    other = ClientContext.create(CkksParams(8192, (60, 40, 40, 60), 40), layout=Layout.COLUMN)
    with pytest.raises(ContextRejected, match="not the advertised"):
        validate_public_context(other.public_bytes(), DEFAULT_PARAMS)


def test_validate_rejects_galois_keys_beyond_the_needed_steps(row_client):
    params = _sections(row_client)[Section.PARAMETERS]
    blob = encode_context(
        Layout.ROW,
        32,
        [(Section.PARAMETERS, params), (Section.GALOIS_KEYS, _galois([1, 2, 4, 8, 16, 32]))],
    )
    with pytest.raises(ContextRejected, match="only the 5"):
        validate_public_context(blob, DEFAULT_PARAMS)


def test_validate_rejects_missing_galois_keys(row_client):
    params = _sections(row_client)[Section.PARAMETERS]
    blob = encode_context(
        Layout.ROW, 32, [(Section.PARAMETERS, params), (Section.GALOIS_KEYS, _galois([1, 2, 4]))]
    )
    with pytest.raises(ContextRejected, match=r"steps \[8, 16\] are missing"):
        validate_public_context(blob, DEFAULT_PARAMS)
    with pytest.raises(ContextRejected, match="needs Galois keys"):
        validate_public_context(
            encode_context(Layout.ROW, 32, [(Section.PARAMETERS, params)]), DEFAULT_PARAMS
        )


def test_validate_rejects_galois_keys_in_a_column_context(column_client):
    params = _sections(column_client)[Section.PARAMETERS]
    blob = encode_context(
        Layout.COLUMN, 0, [(Section.PARAMETERS, params), (Section.GALOIS_KEYS, _galois([1]))]
    )
    with pytest.raises(ContextRejected, match="needs no Galois keys"):
        validate_public_context(blob, DEFAULT_PARAMS)


def test_validate_rejects_relinearization_and_public_keys(column_client):
    context = seal_context(DEFAULT_PARAMS)
    keygen = seal.KeyGenerator(context)
    params = _sections(column_client)[Section.PARAMETERS]
    relin = encode_context(
        Layout.COLUMN,
        0,
        [
            (Section.PARAMETERS, params),
            (Section.RELIN_KEYS, save_bytes(keygen.create_relin_keys())),
        ],
    )
    with pytest.raises(ContextRejected, match="relinearization"):
        validate_public_context(relin, DEFAULT_PARAMS)
    public = seal.PublicKey()
    keygen.create_public_key(public)
    pk = encode_context(
        Layout.COLUMN, 0, [(Section.PARAMETERS, params), (Section.PUBLIC_KEY, save_bytes(public))]
    )
    with pytest.raises(ContextRejected, match="public key"):
        validate_public_context(pk, DEFAULT_PARAMS)


@pytest.mark.parametrize("row_slots", [0, 3, 8192])
def test_validate_rejects_a_row_width_that_is_not_a_power_of_two_within_the_slots(
    row_client, row_slots
):
    params = _sections(row_client)[Section.PARAMETERS]
    with pytest.raises(ContextRejected, match="power of two"):
        validate_public_context(
            encode_context(Layout.ROW, row_slots, [(Section.PARAMETERS, params)]), DEFAULT_PARAMS
        )


def test_validate_rejects_keys_that_seal_cannot_load(row_client):
    sections = _sections(row_client)
    broken = bytearray(sections[Section.GALOIS_KEYS])
    broken[16:20] = b"\xff" * 4  # the zstd magic number after SEAL's header
    blob = encode_context(
        Layout.ROW,
        32,
        [(Section.PARAMETERS, sections[Section.PARAMETERS]), (Section.GALOIS_KEYS, bytes(broken))],
    )
    with pytest.raises(ContextRejected, match="do not load"):
        validate_public_context(blob, DEFAULT_PARAMS)


def test_validate_rejects_malformed_and_oversized_uploads(row_client):
    with pytest.raises(FramingError, match="bad magic"):
        validate_public_context(
            b"\x0a\x20" + b"\x00" * 40, DEFAULT_PARAMS
        )  # e.g. a TenSEAL protobuf
    with pytest.raises(FramingError, match="exceeds"):
        validate_public_context(
            row_client.public_bytes(), DEFAULT_PARAMS, FrameLimits(max_context_bytes=1 << 20)
        )


def test_a_private_context_reloads_with_the_same_public_id(row_client):
    again = ClientContext.from_bytes(row_client.to_bytes())
    assert again.context_id == row_client.context_id
    with pytest.raises(ContextRejected, match="no secret key"):
        ClientContext.from_bytes(row_client.public_bytes())
