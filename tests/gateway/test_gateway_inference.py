"""Plaintext and CKKS-encrypted inference through the real routes: uvicorn on loopback, real
anvil, real bundles verified against their on-chain hash, real worker processes."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gateway_support import PUBLIC_URL, serve
from test_gateway_inference_support import (
    PRICE_WEI,
    Dataset,
    Publisher,
    breast_cancer,
    onnx_logits,
    problem,
    session_for,
    spector,
    write,
)

from ckks import (
    COMPACT,
    DEFAULT_PARAMS,
    PARAM_SETS,
    PRECISE,
    CkksParams,
    ClientContext,
    Layout,
    SetClient,
    Wire,
    encode_request,
    parse_response,
    seal_minor_version,
    uncompressed,
)
from clients.sdk import GatewayClient
from clients.sdk._encrypted import split_rows
from contracts.chain import Anvil
from contracts.deploy import Deployment
from gateway import GatewaySettings, create_app
from trainer.bundle import WrittenBundle, feature_schema_hash

Published = dict[str, tuple[int, WrittenBundle, Dataset]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-store")


@pytest.fixture(scope="module")
def published(anvil: Anvil, deployment: Deployment, module_chain: None, store: Path) -> Published:
    publisher = Publisher(anvil.w3, deployment, anvil.accounts[0].private_key)
    out: Published = {}
    for ds in (spector(), breast_cancer()):
        bundle = write(ds, store)
        subnet_id = publisher.create(ds.name)
        schema = feature_schema_hash(list(ds.feature_names), ds.label)
        publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri(), schema)
        out[ds.name] = (subnet_id, bundle, ds)
    return out


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: Anvil,
    deployment: Deployment,
    published: Published,
    store: Path,
) -> Iterator[str]:
    settings = GatewaySettings(
        public_url=PUBLIC_URL,
        rpc_url=anvil.rpc_url,
        contracts=dict(deployment.addresses),
        queue_path=tmp_path_factory.mktemp("gw-inference") / "receipts.sqlite3",
        recorder_enabled=False,
        event_poll_interval_s=0.2,
        settle_interval_s=0,
        model_store=store,
        predict_max_rows=600,
        he_workers=1,
        he_max_queue=0,  # capacity 1: the pool-full test needs only two requests
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def users(world: Any, anvil: Anvil, module_chain: None, gateway: str) -> dict[str, dict[str, str]]:
    """Session headers of a paying member, a staker without credit, and a non-staker."""
    funder = anvil.accounts[4].private_key
    member = world.new_user(funder_key=funder, credit_wei=10**17, cap_wei=10**17)
    broke = world.new_user(funder_key=funder, credit_wei=0, cap_wei=None)
    unstaked = world.new_user(funder_key=funder, stake_wei=0)
    return {
        name: session_for(gateway, "0x" + user.key.hex().removeprefix("0x"))
        for name, user in (("member", member), ("broke", broke), ("unstaked", unstaked))
    }


def _ready(client: httpx.Client, subnet_id: int) -> dict[str, Any]:
    """The subnet once its model is served and the sets' errors on it are measured (the
    measurement follows the load in the only worker, which would answer 503 meanwhile)."""
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/v1/subnets/{subnet_id}").json()
        measured = all(
            s["max_abs_logit_error"] is not None for s in body["ckks_parameter_sets"].values()
        )
        settled = body["model_status"] != "loading" and (
            body["model_status"] != "ready" or measured
        )
        if settled or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _member_token(users: dict[str, dict[str, str]]) -> str:
    return users["member"]["Cookie"].split("=", 1)[1]


# ----------------------------------------------------------------------------- subnets


def test_a_subnet_advertises_its_served_model_features_price_stake_and_ckks_parameters(
    client: httpx.Client, published: Published
) -> None:
    subnet_id, bundle, ds = published["breast_cancer"]
    body = _ready(client, subnet_id)
    assert body["model_status"] == "ready" and body["model_error"] is None
    assert (body["model_version"], body["published_version"]) == (1, 1)
    assert body["model_hash"] == body["published_model_hash"] == "0x" + bundle.sha256
    assert body["feature_names"] == list(ds.feature_names)
    assert (body["price_per_row_wei"], body["min_stake_wei"]) == (str(PRICE_WEI), str(10**18))
    assert body["ckks"] == DEFAULT_PARAMS.to_dict()
    assert set(body["ckks"]["layouts"]) == {"row", "column", "coeff"}
    assert CkksParams.from_dict(body["ckks"]) == DEFAULT_PARAMS  # 128-bit check passes


def test_the_subnet_list_carries_every_published_model(
    client: httpx.Client, published: Published
) -> None:
    for subnet_id, _, _ in published.values():
        _ready(client, subnet_id)
    listed = {s["id"]: s for s in client.get("/v1/subnets").json()["subnets"]}
    for subnet_id, bundle, ds in published.values():
        assert listed[subnet_id]["model_hash"] == "0x" + bundle.sha256
        assert listed[subnet_id]["feature_names"] == list(ds.feature_names)


def test_an_unknown_subnet_is_a_404_problem(client: httpx.Client) -> None:
    problem(client.get("/v1/subnets/999999"), 404, "not-found")


# ----------------------------------------------------------------------------- plaintext


def test_predict_returns_onnx_probabilities_and_a_receipt_of_the_exact_bodies(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, bundle, ds = published["spector"]
    _ready(client, subnet_id)
    rows = ds.rows()
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": rows}, headers=users["member"]
    )
    assert r.status_code == 200, r.text
    body = r.json()
    reference = onnx_logits(bundle.path, ds.x)
    np.testing.assert_allclose(body["logits"], reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(body["probabilities"], 1 / (1 + np.exp(-reference)), atol=1e-12)
    assert body["model_hash"] == "0x" + bundle.sha256 and body["model_version"] == 1
    assert r.headers["x-model-version"] == "1"
    receipt = client.get(f"/v1/receipts/{r.headers['x-receipt-id']}", headers=users["member"])
    stored = receipt.json()["receipt"]
    assert stored["request_hash"] == "0x" + hashlib.sha256(r.request.content).hexdigest()
    assert stored["response_hash"] == "0x" + hashlib.sha256(r.content).hexdigest()
    assert stored["model_hash"] == "0x" + bundle.sha256
    assert (stored["rows"], stored["price_wei"]) == (len(rows), str(len(rows) * PRICE_WEI))


def test_predict_takes_features_in_any_key_order(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, bundle, ds = published["spector"]
    rows = [dict(reversed(list(r.items()))) for r in ds.rows(0, 3)]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": rows}, headers=users["member"]
    )
    np.testing.assert_allclose(r.json()["logits"], onnx_logits(bundle.path, ds.x[:3]), atol=1e-12)


@pytest.mark.parametrize(
    ("rows", "problems"),
    [
        (
            [{"GPA": 3.0, "TUCE": 20.0}],
            [{"row": 0, "problem": "missing features", "features": ["PSI"]}],
        ),
        (
            [{"GPA": 3.0, "TUCE": 20.0, "PSI": 1.0, "AGE": 4.0}],
            [{"row": 0, "problem": "unknown features", "features": ["AGE"]}],
        ),
        (
            [{"GPA": 3.0, "TUCE": 20.0, "PSI": 1.0}, {"GPA": "3.0", "TUCE": 20.0, "PSI": 1.0}],
            [{"row": 1, "feature": "GPA", "problem": "not a finite number"}],
        ),
        (
            [{"GPA": True, "TUCE": 20.0, "PSI": 1.0}],
            [{"row": 0, "feature": "GPA", "problem": "not a finite number"}],
        ),
        (
            [{"GPA": 10**400, "TUCE": 20, "PSI": 1}],
            [{"row": 0, "feature": "GPA", "problem": "not a finite number"}],
        ),
        ([[3.0, 20.0, 1.0]], [{"row": 0, "problem": "not an object"}]),
    ],
    ids=["missing", "extra", "string", "boolean", "overflow", "array-row"],
)
def test_predict_rejects_bad_rows_with_a_422_naming_each_problem(
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    rows: list[Any],
    problems: list[dict[str, Any]],
) -> None:
    subnet_id = published["spector"][0]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": rows}, headers=users["member"]
    )
    assert problem(r, 422, "invalid-rows")["errors"] == problems


@pytest.mark.parametrize(
    "body",
    [b'{"rows": []}', b'{"rows": {}}', b'{"data": []}', b'{"rows": [], "x": 1}', b"[1, 2]"],
    ids=["empty", "not-a-list", "no-rows", "extra-key", "not-an-object"],
)
def test_predict_rejects_a_body_of_the_wrong_shape(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]], body: bytes
) -> None:
    subnet_id = published["spector"][0]
    headers = {**users["member"], "Content-Type": "application/json"}
    problem(
        client.post(f"/v1/subnets/{subnet_id}/predict", content=body, headers=headers),
        422,
        "invalid-rows",
    )


def test_predict_rejects_a_body_that_is_not_json(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id = published["spector"][0]
    headers = {**users["member"], "Content-Type": "application/json"}
    r = client.post(f"/v1/subnets/{subnet_id}/predict", content=b"{rows:", headers=headers)
    problem(r, 400, "bad-request")


def test_predict_refuses_more_rows_than_the_bound_with_413(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, ds = published["spector"]
    rows = ds.rows(0, 1) * 601
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": rows}, headers=users["member"]
    )
    problem(r, 413, "too-many-rows")


def test_predict_on_an_unknown_subnet_is_404(
    client: httpx.Client, users: dict[str, dict[str, str]]
) -> None:
    r = client.post(
        "/v1/subnets/999999/predict", json={"rows": [{"a": 1}]}, headers=users["member"]
    )
    problem(r, 404, "not-found")


def test_predict_needs_a_session_or_key(client: httpx.Client, published: Published) -> None:
    subnet_id, _, ds = published["spector"]
    problem(
        client.post(f"/v1/subnets/{subnet_id}/predict", json={"rows": ds.rows(0, 1)}),
        401,
        "not-authenticated",
    )


def test_predict_without_enough_stake_is_403(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, ds = published["spector"]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": ds.rows(0, 2)}, headers=users["unstaked"]
    )
    body = problem(r, 403, "insufficient-stake")
    assert body["required_stake_wei"] == str(10**18)


def test_predict_without_credit_is_402(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, ds = published["spector"]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": ds.rows(0, 2)}, headers=users["broke"]
    )
    assert problem(r, 402, "payment-required")["price_wei"] == str(2 * PRICE_WEI)


# ----------------------------------------------------------------------------- encrypted


@pytest.mark.parametrize(
    ("dataset", "layout"),
    [
        ("spector", "column"),
        ("spector", "row"),
        ("spector", "coeff"),
        ("breast_cancer", "column"),
        ("breast_cancer", "row"),  # the coeff layout on 569 rows adds 20 s on 2 busy cores
    ],
)
def test_decrypted_logits_equal_onnx_logits_within_1e_4_on_every_row(
    gateway: str,
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    dataset: str,
    layout: str,
) -> None:
    subnet_id, bundle, ds = published[dataset]
    _ready(client, subnet_id)
    reference = onnx_logits(bundle.path, ds.x)
    with GatewayClient(gateway, session_token=_member_token(users), timeout_s=120) as gw:
        encrypted = gw.predict_encrypted(subnet_id, ds.x, layout=layout)
        plain = gw.predict(subnet_id, ds.x)
    assert encrypted.layout == layout and encrypted.logits is not None
    error = np.abs(encrypted.logits - reference)
    assert error.shape == (len(ds.x),)
    assert error.max() <= 1e-4, f"max |logit error| {error.max():.3g} at row {error.argmax()}"
    assert plain.logits is not None
    np.testing.assert_allclose(plain.logits, reference, rtol=0, atol=1e-12)
    assert len(encrypted.receipt_ids) == len(
        split_rows(len(ds.x), Layout.from_label(layout), DEFAULT_PARAMS)
    )
    assert len(encrypted.receipt_ids) == (1 if layout == "column" else -(-len(ds.x) // 31))


def _post_context(client: httpx.Client, headers: dict[str, str], blob: bytes) -> httpx.Response:
    return client.post(
        "/v1/he/contexts",
        content=blob,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


def _infer(
    client: httpx.Client,
    subnet_id: int,
    headers: dict[str, str],
    body: bytes,
    context_id: str | None = None,
) -> httpx.Response:
    extra = {"X-Context-Id": context_id} if context_id else {}
    return client.post(
        f"/v1/subnets/{subnet_id}/infer",
        content=body,
        headers={**headers, **extra, "Content-Type": "application/octet-stream"},
    )


@pytest.fixture(scope="module")
def row_context() -> ClientContext:
    return ClientContext.create(DEFAULT_PARAMS, layout=Layout.ROW, n_features=30)


def test_a_public_context_is_stored_by_its_hash_and_a_receipt_hashes_the_exact_bodies(
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    row_context: ClientContext,
) -> None:
    subnet_id, bundle, ds = published["breast_cancer"]
    blob = row_context.public_bytes()
    r = _post_context(client, users["member"], blob)
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["context_id"] == hashlib.sha256(blob).hexdigest() == row_context.context_id
    assert (info["layout"], info["row_slots"], info["size_bytes"]) == ("row", 16, len(blob))
    assert len(blob) <= 2.5e6
    body = row_context.encrypt(ds.x[:3], Layout.ROW)
    r = _infer(client, subnet_id, users["member"], body, info["context_id"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    logits = row_context.decrypt_logits(r.content, expected_rows=3)
    np.testing.assert_allclose(logits, onnx_logits(bundle.path, ds.x[:3]), atol=1e-4)
    stored = client.get(f"/v1/receipts/{r.headers['x-receipt-id']}", headers=users["member"]).json()
    assert stored["receipt"]["request_hash"] == "0x" + hashlib.sha256(body).hexdigest()
    assert stored["receipt"]["response_hash"] == "0x" + hashlib.sha256(r.content).hexdigest()
    assert (stored["receipt"]["rows"], stored["receipt"]["model_hash"]) == (3, "0x" + bundle.sha256)


def test_a_context_with_its_secret_key_is_refused(
    client: httpx.Client, users: dict[str, dict[str, str]], row_context: ClientContext
) -> None:
    r = _post_context(client, users["member"], row_context.to_bytes())
    assert "secret key" in problem(r, 422, "he-context-rejected")["detail"]


def test_a_context_with_other_parameters_is_refused(
    client: httpx.Client, users: dict[str, dict[str, str]]
) -> None:
    other = ClientContext.create(CkksParams(16384, (60, 40, 40, 60), 40), layout=Layout.COLUMN)
    r = _post_context(client, users["member"], other.public_bytes())
    assert "advertised" in problem(r, 422, "he-context-rejected")["detail"]


@pytest.mark.parametrize(
    "blob", [b"not a context", b"2PMC" + b"\x01" * 5, b""], ids=["garbage", "truncated", "empty"]
)
def test_a_malformed_context_is_a_400(
    client: httpx.Client, users: dict[str, dict[str, str]], blob: bytes
) -> None:
    r = _post_context(client, users["member"], blob)
    problem(r, 400, "he-malformed" if blob else "bad-request")


def test_uploading_a_context_needs_a_session_or_key(
    client: httpx.Client, row_context: ClientContext
) -> None:
    problem(_post_context(client, {}, row_context.public_bytes()), 401, "not-authenticated")


def test_a_row_request_naming_an_unknown_or_expired_context_is_404(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, ds = published["breast_cancer"]
    never_uploaded = ClientContext.create(DEFAULT_PARAMS, layout=Layout.ROW, n_features=30)
    body = never_uploaded.encrypt(ds.x[:1], Layout.ROW)
    r = _infer(client, subnet_id, users["member"], body, never_uploaded.context_id)
    problem(r, 404, "he-context-not-found")
    problem(_infer(client, subnet_id, users["member"], body), 400, "bad-request")


def test_an_oversize_body_is_a_413(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id = published["breast_cancer"][0]
    r = _infer(client, subnet_id, users["member"], b"2PMQ" + b"\x00" * (9 << 20))
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")


def test_truncated_and_mismatched_frames_are_4xx_and_the_worker_keeps_serving(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, bundle, ds = published["breast_cancer"]
    column = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN)
    good = column.encrypt(ds.x[:5], Layout.COLUMN)
    problem(_infer(client, subnet_id, users["member"], good[: len(good) // 2]), 400, "he-malformed")
    narrow = column.encrypt(ds.x[:5, :4], Layout.COLUMN)
    problem(_infer(client, subnet_id, users["member"], narrow), 422, "he-rejected")
    foreign = ClientContext.create(CkksParams(16384, (60, 40, 40, 60), 40), layout=Layout.COLUMN)
    r = _infer(client, subnet_id, users["member"], foreign.encrypt(ds.x[:5], Layout.COLUMN))
    assert r.status_code in (400, 413, 422) and r.headers["content-type"].startswith(
        "application/problem+json"
    )
    r = _infer(client, subnet_id, users["member"], good)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(
        column.decrypt_logits(r.content, expected_rows=5),
        onnx_logits(bundle.path, ds.x[:5]),
        atol=1e-4,
    )


def test_encrypted_inference_without_stake_is_403_and_without_credit_402(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, ds = published["spector"]
    body = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN).encrypt(ds.x, Layout.COLUMN)
    problem(_infer(client, subnet_id, users["unstaked"], body), 403, "insufficient-stake")
    problem(_infer(client, subnet_id, users["broke"], body), 402, "payment-required")
    problem(_infer(client, subnet_id, {}, body), 401, "not-authenticated")


def test_a_full_pool_answers_503_with_retry_after_and_reserves_nothing(
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    row_context: ClientContext,
) -> None:
    subnet_id, _, ds = published["breast_cancer"]
    assert _post_context(client, users["member"], row_context.public_bytes()).status_code == 201
    # 64 rows (compact, to fit the 8 MiB bound): about 64 x 5 ms in the only worker
    slow = row_context.encrypt(ds.x[:64], Layout.ROW, wire=Wire.COMPACT)
    quick = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN).encrypt(
        ds.x[:2], Layout.COLUMN
    )
    before = int(client.get("/v1/me", headers=users["member"]).json()["outstanding_wei"])
    first: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: first.update(
            r=_infer(client, subnet_id, users["member"], slow, row_context.context_id)
        )
    )
    thread.start()
    time.sleep(0.25)
    busy = _infer(client, subnet_id, users["member"], quick)
    thread.join(60)
    body = problem(busy, 503, "he-overloaded")
    assert busy.headers["retry-after"] == "1" and body["retry_after_s"] == 1
    assert first["r"].status_code == 200, first["r"].text
    after = int(client.get("/v1/me", headers=users["member"]).json()["outstanding_wei"])
    assert after - before == 64 * PRICE_WEI  # the refused request reserved nothing
    assert _infer(client, subnet_id, users["member"], quick).status_code == 200


# ----------------------------------------------------------------------------- named CKKS sets

SET_BOUNDS = {"compact": 2e-3, "precise": 1e-4}


def test_a_subnet_lists_the_compact_and_precise_sets_with_errors_measured_on_its_model(
    client: httpx.Client, published: Published
) -> None:
    subnet_id, _, ds = published["breast_cancer"]
    body = _ready(client, subnet_id)
    sets = body["ckks_parameter_sets"]
    assert set(sets) == {"compact", "precise"}
    for name, pset in PARAM_SETS.items():
        entry = sets[name]
        assert entry["poly_modulus_degree"] == 2048
        assert entry["coeff_mod_bit_sizes"] == list(pset.coeff_mod_bit_sizes)
        assert entry["coeff_modulus"] == [str(p) for p in pset.primes()]
        assert entry["seal_versions"] == ["4.1", "4.3"]
        assert 0 < entry["max_abs_logit_error"] <= SET_BOUNDS[name]
        assert entry["logit_bound"] > np.abs(ds.x @ ds.coef + ds.intercept).max()
    std = body["feature_standardisation"]
    np.testing.assert_allclose(std["mean"], ds.x.mean(axis=0))


@pytest.mark.parametrize("name", ["compact", "precise"])
@pytest.mark.parametrize("dataset", ["spector", "breast_cancer"])
def test_the_sdk_predicts_in_each_set_within_its_bound(
    gateway: str,
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    dataset: str,
    name: str,
) -> None:
    subnet_id, bundle, ds = published[dataset]
    _ready(client, subnet_id)
    rows = ds.x[:40]
    reference = onnx_logits(bundle.path, rows)
    with GatewayClient(gateway, session_token=_member_token(users), timeout_s=120) as gw:
        encrypted = gw.predict_encrypted(subnet_id, rows, params=name)
    assert (encrypted.layout, encrypted.param_set) == ("coeff", name)
    assert encrypted.logits is not None
    error = np.abs(encrypted.logits - reference)
    assert error.max() <= SET_BOUNDS[name], f"max |logit error| {error.max():.3g}"
    assert len(encrypted.receipt_ids) == 1


@pytest.mark.parametrize("minor", [3, 1], ids=["seal-4.3", "seal-4.1"])
def test_one_compact_row_is_under_16_kb_each_way_and_answered_in_the_callers_seal_version(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]], minor: int
) -> None:
    subnet_id, bundle, ds = published["breast_cancer"]
    body = _ready(client, subnet_id)
    std = body["feature_standardisation"]
    z = (ds.x[:1] - np.asarray(std["mean"])) / np.asarray(std["scale"])
    set_client = SetClient(COMPACT, seal_minor=minor)
    request = set_client.encrypt(z)
    response = _infer(client, subnet_id, users["member"], request)
    assert response.status_code == 200, response.text
    assert len(request) <= 16_000 and len(response.content) <= 16_000
    frame = parse_response(response.content)
    assert seal_minor_version(frame.ciphertexts[0]) == minor
    logit = set_client.decrypt_logits(response.content, expected_rows=1)[0]
    assert abs(logit - onnx_logits(bundle.path, ds.x[:1])[0]) <= 2e-3
    assert response.headers["X-Receipt-Id"]


def test_a_foreign_seal_version_is_a_422_naming_the_supported_ones(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, _ = published["breast_cancer"]
    ct = bytearray(uncompressed(SetClient(COMPACT).encrypt_ciphertext(np.zeros(30))))
    ct[4] = 2  # SEAL 4.2
    request = encode_request(Layout.COEFF, 1, 30, [bytes(ct)], param_set=COMPACT.set_id)
    response = _infer(client, subnet_id, users["member"], request)
    body = problem(response, 422, "he-seal-version")
    assert body["supported_seal_versions"] == ["4.1", "4.3"]


@pytest.mark.parametrize("damage", ["coefficient", "truncated-inside", "scale"])
def test_a_tampered_set_ciphertext_is_a_422_and_the_worker_keeps_serving(
    client: httpx.Client,
    published: Published,
    users: dict[str, dict[str, str]],
    damage: str,
) -> None:
    subnet_id, _, _ = published["breast_cancer"]
    good = SetClient(COMPACT)
    ct = bytearray(uncompressed(good.encrypt_ciphertext(np.zeros(30))))
    if damage == "coefficient":
        ct[200:208] = b"\xff" * 8
    elif damage == "truncated-inside":
        del ct[-100:]
        ct[8:16] = len(ct).to_bytes(8, "little")
    else:
        ct = bytearray(uncompressed(SetClient(PRECISE).encrypt_ciphertext(np.zeros(30))))
    request = encode_request(Layout.COEFF, 1, 30, [bytes(ct)], param_set=COMPACT.set_id)
    response = _infer(client, subnet_id, users["member"], request)
    problem(response, 422, "he-rejected")
    ok = _infer(client, subnet_id, users["member"], good.encrypt(np.zeros((1, 30))))
    assert ok.status_code == 200


def test_an_unknown_parameter_set_is_a_400(
    client: httpx.Client, published: Published, users: dict[str, dict[str, str]]
) -> None:
    subnet_id, _, _ = published["breast_cancer"]
    request = bytearray(SetClient(COMPACT).encrypt(np.zeros((1, 30))))
    request[6] = 7  # param_set byte
    response = _infer(client, subnet_id, users["member"], bytes(request))
    problem(response, 400, "he-malformed")
