"""The model follower through the real gateway: bundles published on a real anvil, fetched from
the model store or over real HTTP, verified against the on-chain hash, swapped or refused."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gateway_support import PUBLIC_URL, serve
from test_gateway_inference_support import (
    Publisher,
    onnx_logits,
    problem,
    session_for,
    spector,
    static_server,
    tamper,
    wait_for,
    write,
)

from ckks import DEFAULT_PARAMS, ClientContext, Layout
from contracts.chain import Anvil
from contracts.deploy import Deployment
from gateway import GatewaySettings, create_app

FETCH_MAX_BYTES = 200_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("followed-store")


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bundles served over HTTP only (not in the gateway's store)."""
    return tmp_path_factory.mktemp("web-bundles")


@pytest.fixture(scope="module")
def web(web_root: Path) -> Iterator[str]:
    with static_server(web_root) as url:
        yield url


@pytest.fixture(scope="module")
def publisher(anvil: Anvil, deployment: Deployment, module_chain: None) -> Publisher:
    return Publisher(anvil.w3, deployment, anvil.accounts[0].private_key)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: Anvil,
    deployment: Deployment,
    module_chain: None,
    store: Path,
) -> Iterator[str]:
    settings = GatewaySettings(
        public_url=PUBLIC_URL,
        rpc_url=anvil.rpc_url,
        contracts=dict(deployment.addresses),
        queue_path=tmp_path_factory.mktemp("gw-models") / "receipts.sqlite3",
        recorder_enabled=False,
        event_poll_interval_s=0.1,
        settle_interval_s=0,
        model_store=store,
        model_fetch_max_bytes=FETCH_MAX_BYTES,
        model_cache_max_entries=2,
        he_workers=1,
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def member(world: Any, anvil: Anvil, module_chain: None, gateway: str) -> dict[str, str]:
    user = world.new_user(funder_key=anvil.accounts[4].private_key)
    return session_for(gateway, "0x" + user.key.hex().removeprefix("0x"))


def _settled(body: dict[str, Any]) -> bool:
    """The published version is served or refused (the follower saw the publication)."""
    return bool(body["published_version"] > 0 and body["model_status"] in ("ready", "refused"))


def _predict(
    client: httpx.Client, subnet_id: int, headers: dict[str, str], n: int = 4
) -> httpx.Response:
    return client.post(
        f"/v1/subnets/{subnet_id}/predict", json={"rows": spector().rows(0, n)}, headers=headers
    )


def _refused_count(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('gateway_model_loads_total{outcome="refused"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_published_version_is_verified_served_and_replaced_by_the_next_one(
    client: httpx.Client, publisher: Publisher, store: Path, member: dict[str, str]
) -> None:
    ds = spector()
    first = write(ds, store)
    second = write(ds, store, coef=[float(c) * 2 for c in ds.coef], job_name="v2")
    subnet_id = publisher.create("swap")
    publisher.publish(subnet_id, first.sha256, first.path.as_uri())
    body = wait_for(client, subnet_id, lambda b: b["model_status"] == "ready")
    assert (body["model_version"], body["model_hash"]) == (1, "0x" + first.sha256)
    r = _predict(client, subnet_id, member)
    assert r.status_code == 200 and r.headers["x-model-version"] == "1"
    np.testing.assert_allclose(r.json()["logits"], onnx_logits(first.path, ds.x[:4]), atol=1e-12)

    publisher.publish(subnet_id, second.sha256, second.path.as_uri())
    body = wait_for(client, subnet_id, lambda b: b["model_version"] == 2)
    assert body["model_status"] == "ready" and body["model_hash"] == "0x" + second.sha256
    r = _predict(client, subnet_id, member)
    assert r.status_code == 200 and r.headers["x-model-version"] == "2"
    assert r.json()["model_hash"] == "0x" + second.sha256
    np.testing.assert_allclose(r.json()["logits"], onnx_logits(second.path, ds.x[:4]), atol=1e-12)


def test_a_bundle_that_does_not_match_the_onchain_hash_is_refused_and_the_previous_version_keeps_serving(
    client: httpx.Client, publisher: Publisher, store: Path, member: dict[str, str]
) -> None:
    ds = spector()
    good = write(ds, store, job_name="good")
    other = write(ds, store, job_name="other")
    subnet_id = publisher.create("mismatch")
    publisher.publish(subnet_id, good.sha256, good.path.as_uri())
    wait_for(client, subnet_id, lambda b: b["model_status"] == "ready")
    refused_before = _refused_count(client)

    publisher.publish(subnet_id, good.sha256[::-1], other.path.as_uri())  # claims another hash
    body = wait_for(client, subnet_id, lambda b: b["model_status"] == "refused")
    assert "does not match" in body["model_error"]
    assert (body["published_version"], body["model_version"]) == (2, 1)
    assert body["model_hash"] == "0x" + good.sha256
    assert _refused_count(client) == refused_before + 1
    r = _predict(client, subnet_id, member)
    assert r.status_code == 200 and r.headers["x-model-version"] == "1"
    receipt = client.get(f"/v1/receipts/{r.headers['x-receipt-id']}", headers=member).json()
    assert receipt["receipt"]["model_hash"] == "0x" + good.sha256  # the model that answered


def test_a_subnet_whose_only_bundle_was_refused_answers_503(
    client: httpx.Client, publisher: Publisher, store: Path, member: dict[str, str]
) -> None:
    bundle = write(spector(), store, job_name="lonely")
    subnet_id = publisher.create("refused")
    publisher.publish(
        subnet_id, hashlib.sha256(b"something else").hexdigest(), bundle.path.as_uri()
    )
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and body["feature_names"] == []
    assert (
        problem(_predict(client, subnet_id, member), 503, "model-unavailable")["model_status"]
        == "refused"
    )
    frame = ClientContext.create(DEFAULT_PARAMS, layout=Layout.COLUMN).encrypt(
        spector().x, Layout.COLUMN
    )
    r = client.post(f"/v1/subnets/{subnet_id}/infer", content=frame, headers=member)
    problem(r, 503, "model-unavailable")


def test_a_bundle_whose_onnx_graph_disagrees_with_its_card_is_refused(
    client: httpx.Client, publisher: Publisher, store: Path
) -> None:
    ds = spector()
    forged = tamper(write(ds, store, job_name="honest"), store, coef=[0.0, 0.0, 1.0])
    subnet_id = publisher.create("forged")
    publisher.publish(subnet_id, forged.sha256, forged.path.as_uri())
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "disagrees" in body["model_error"]


def test_a_local_artifact_outside_the_model_store_is_refused(
    client: httpx.Client, publisher: Publisher, tmp_path: Path
) -> None:
    bundle = write(spector(), tmp_path / "elsewhere")
    subnet_id = publisher.create("outside")
    publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri())
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "outside" in body["model_error"]


def test_an_unsupported_uri_scheme_is_refused(client: httpx.Client, publisher: Publisher) -> None:
    subnet_id = publisher.create("ipfs")
    publisher.publish(
        subnet_id, "ab" * 32, "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    )
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "scheme" in body["model_error"]


def test_a_bundle_is_fetched_over_http_verified_and_kept_in_the_store(
    client: httpx.Client,
    publisher: Publisher,
    web: str,
    web_root: Path,
    store: Path,
    member: dict[str, str],
) -> None:
    ds = spector()
    bundle = write(ds, web_root, job_name="over http")
    assert not (store / bundle.sha256).exists()
    subnet_id = publisher.create("http")
    publisher.publish(subnet_id, bundle.sha256, f"{web}/{bundle.sha256}/")
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "ready", body
    assert (store / bundle.sha256 / "model.onnx").read_bytes() == (
        bundle.path / "model.onnx"
    ).read_bytes()
    r = _predict(client, subnet_id, member)
    np.testing.assert_allclose(r.json()["logits"], onnx_logits(bundle.path, ds.x[:4]), atol=1e-12)


def test_an_http_bundle_larger_than_the_bound_is_refused(
    client: httpx.Client, publisher: Publisher, web: str, web_root: Path
) -> None:
    bundle = write(spector(), web_root, padding="x" * FETCH_MAX_BYTES)
    subnet_id = publisher.create("big")
    publisher.publish(subnet_id, bundle.sha256, f"{web}/{bundle.sha256}")
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "bound" in body["model_error"]


def test_an_http_manifest_of_another_hash_is_refused(
    client: httpx.Client, publisher: Publisher, web: str, web_root: Path
) -> None:
    bundle = write(spector(), web_root, job_name="http mismatch")
    subnet_id = publisher.create("http-mismatch")
    publisher.publish(subnet_id, bundle.sha256[::-1], f"{web}/{bundle.sha256}/")
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "does not match" in body["model_error"]


def test_an_http_bundle_that_is_missing_is_refused(
    client: httpx.Client, publisher: Publisher, web: str
) -> None:
    subnet_id = publisher.create("http-missing")
    publisher.publish(subnet_id, "cd" * 32, f"{web}/nothing-here/")
    body = wait_for(client, subnet_id, _settled)
    assert body["model_status"] == "refused" and "404" in body["model_error"]


def test_an_unpublished_subnet_says_so_and_predict_is_409(
    client: httpx.Client, publisher: Publisher, member: dict[str, str]
) -> None:
    subnet_id = publisher.create("empty")
    body = client.get(f"/v1/subnets/{subnet_id}").json()
    assert (body["model_status"], body["model_version"], body["feature_names"]) == (
        "unpublished",
        0,
        [],
    )
    problem(_predict(client, subnet_id, member), 409, "conflict")


def test_price_and_stake_changes_on_chain_show_up_in_the_subnet(
    client: httpx.Client, publisher: Publisher, store: Path
) -> None:
    subnet_id = publisher.create("repriced", price_wei=5, min_stake_wei=7)
    assert client.get(f"/v1/subnets/{subnet_id}").json()["price_per_row_wei"] == "5"
    publisher.tx.transact(publisher.registry.functions.setPrice(subnet_id, 11))
    publisher.tx.transact(publisher.registry.functions.setMinStake(subnet_id, 13))
    body = wait_for(
        client, subnet_id, lambda b: b["price_per_row_wei"] == "11" and b["min_stake_wei"] == "13"
    )
    assert body["model_status"] == "unpublished"


def test_an_evicted_model_is_verified_again_and_still_serves(
    client: httpx.Client, publisher: Publisher, store: Path, member: dict[str, str]
) -> None:
    ds = spector()
    ids = []
    for i in range(3):  # the cache holds two models
        bundle = write(ds, store, job_name=f"evict {i}", intercept=float(ds.intercept) + i)
        subnet_id = publisher.create(f"evict-{i}")
        publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri())
        wait_for(client, subnet_id, lambda b: b["model_status"] == "ready")
        ids.append((subnet_id, bundle))
    for subnet_id, bundle in ids:
        r = _predict(client, subnet_id, member)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(
            r.json()["logits"], onnx_logits(bundle.path, ds.x[:4]), atol=1e-12
        )
    loaded = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("gateway_models_loaded ")
    ]
    assert loaded and float(loaded[0].split()[-1]) <= 2


def test_a_request_holding_the_old_model_finishes_on_it_after_the_swap(
    anvil: Anvil, deployment: Deployment, publisher: Publisher, store: Path
) -> None:
    """In process, on the same real chain: the follower swaps a reference, never the object."""
    from prometheus_client import CollectorRegistry

    from gateway._chain import ChainReader
    from gateway._fetch import ModelSource
    from gateway._metrics import Metrics
    from gateway._models import ModelFollower

    ds = spector()
    old = write(ds, store, job_name="in flight v1")
    new = write(ds, store, job_name="in flight v2", intercept=float(ds.intercept) + 1.0)
    subnet_id = publisher.create("in-flight")
    publisher.publish(subnet_id, old.sha256, old.path.as_uri())

    async def run() -> None:
        chain = ChainReader.connect(anvil.rpc_url, dict(deployment.addresses), Metrics())
        follower = ModelFollower(chain, ModelSource(model_store=store), CollectorRegistry())
        try:
            await follower.refresh(subnet_id)
            assert (await follower.wait_until_settled(subnet_id)).state == "ready"
            version, held = await follower.model_for(subnet_id)  # a request starts on v1
            await follower.poll()  # remembers the head
            publisher.publish(subnet_id, new.sha256, new.path.as_uri())
            assert await follower.poll() == 1
            status = await follower.wait_until_settled(subnet_id)
            assert (status.state, status.serving_version) == ("ready", 2)
            next_version, current = await follower.model_for(subnet_id)
            assert (version, next_version) == (1, 2) and held is not current
            held_logits, _ = held.predict(ds.x)  # the old request finishes on v1
            np.testing.assert_allclose(held_logits, onnx_logits(old.path, ds.x), atol=1e-12)
            np.testing.assert_allclose(
                current.predict(ds.x)[0], onnx_logits(new.path, ds.x), atol=1e-12
            )
        finally:
            await follower.stop()
            await chain.close()

    asyncio.run(run())


def test_a_reverted_chain_brings_back_the_version_it_now_names(
    anvil: Anvil, deployment: Deployment, publisher: Publisher, store: Path
) -> None:
    from prometheus_client import CollectorRegistry

    from gateway._chain import ChainReader
    from gateway._fetch import ModelSource
    from gateway._metrics import Metrics
    from gateway._models import ModelFollower

    ds = spector()
    first = write(ds, store, job_name="reorg v1")
    second = write(ds, store, job_name="reorg v2")
    subnet_id = publisher.create("reorg")
    publisher.publish(subnet_id, first.sha256, first.path.as_uri())

    async def run() -> None:
        chain = ChainReader.connect(anvil.rpc_url, dict(deployment.addresses), Metrics())
        follower = ModelFollower(chain, ModelSource(model_store=store), CollectorRegistry())
        try:
            await follower.sync()
            await follower.wait_until_settled(subnet_id)
            snapshot = anvil.snapshot()
            publisher.publish(subnet_id, second.sha256, second.path.as_uri())
            await follower.poll()
            status = await follower.wait_until_settled(subnet_id)
            assert (status.serving_version, status.serving_hash) == (2, "0x" + second.sha256)
            anvil.revert(snapshot)
            await follower.poll()  # the head went back: everything is read again
            status = await follower.wait_until_settled(subnet_id)
            assert (status.state, status.serving_version) == ("ready", 1)
            assert status.serving_hash == "0x" + first.sha256
        finally:
            await follower.stop()
            await chain.close()

    asyncio.run(run())


def test_twopm_predict_on_a_refused_model_names_the_gateways_reason(
    client: httpx.Client,
    publisher: Publisher,
    tmp_path: Path,
    world: Any,
    anvil: Anvil,
    gateway: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from eth_account import Account
    from gateway_support import sign_in

    from core.cli import main

    bundle = write(spector(), tmp_path / "outside-the-store")
    subnet_id = publisher.create("outside-cli")
    publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri())
    wait_for(client, subnet_id, _settled)
    user = world.new_user(funder_key=anvil.accounts[4].private_key)
    key = "0x" + user.key.hex().removeprefix("0x")
    with httpx.Client(base_url=gateway, timeout=30) as c:
        token = sign_in(c, key)
    address = Account.from_key(key).address.lower()
    sessions = tmp_path / "sessions.json"
    sessions.write_text(json.dumps({gateway: {"current": address, "tokens": {address: token}}}))
    sessions.chmod(0o600)
    rows = tmp_path / "rows.csv"
    rows.write_text("GPA,TUCE,PSI\n2.66,20,0\n")
    code = main(
        ["predict", str(rows), "--subnet", str(subnet_id), "--gateway", gateway,
         "--session-file", str(sessions)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert (
        f"subnet {subnet_id}: the gateway refused its published model version 1: the artifact"
        " path lies outside the gateway's model store" in err
    )
