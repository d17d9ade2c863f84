"""``predict?proof=true`` through the real routes: uvicorn on loopback, real anvil, snarkjs workers,
the proof checked by the version's deployed verifier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_support import PUBLIC_URL, serve
from test_gateway_inference_support import (
    PRICE_WEI,
    Dataset,
    Publisher,
    breast_cancer,
    problem,
    session_for,
    spector,
    write,
)

from contracts import Transactor
from contracts.chain import Anvil
from contracts.deploy import Deployment
from gateway import GatewaySettings, create_app
from trainer.bundle import WrittenBundle, feature_schema_hash
from zk import (
    BATCH_ROWS,
    check_on_chain,
    deploy_version_verifier,
    ensure_keys,
    inputs_hash,
    model_commitment,
)

pytestmark = pytest.mark.slow

PROOF_PRICE_ROWS = 7
Published = dict[str, tuple[int, WrittenBundle, Dataset]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-store")


@pytest.fixture(scope="module")
def published(anvil: Anvil, deployment: Deployment, module_chain: None, store: Path) -> Published:
    """Spector and breast cancer with a verifier recorded; a third subnet without one."""
    publisher = Publisher(anvil.w3, deployment, anvil.accounts[0].private_key)
    out: Published = {}
    for ds in (spector(), breast_cancer(), spector()):
        name = ds.name if ds.name not in out else "unproven"
        bundle = write(ds, store)
        subnet_id = publisher.create(name)
        schema = feature_schema_hash(list(ds.feature_names), ds.label)
        version = publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri(), schema)
        if name != "unproven":
            keys = ensure_keys(len(ds.feature_names))
            commitment = model_commitment(keys, [float(c) for c in ds.coef], ds.intercept)
            verifier = deploy_version_verifier(
                Transactor(anvil.w3, anvil.accounts[5].private_key),
                deployment,
                len(ds.feature_names),
                commitment,
            )
            publisher.tx.transact(
                publisher.registry.functions.setModelVerifier(
                    subnet_id, version, verifier, commitment
                )
            )
        out[name] = (subnet_id, bundle, ds)
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
        queue_path=tmp_path_factory.mktemp("gw-proofs") / "receipts.sqlite3",
        recorder_enabled=False,
        event_poll_interval_s=0.2,
        settle_interval_s=0,
        model_store=store,
        proof_workers=1,
        proof_max_pending=1,
        proof_price_rows=PROOF_PRICE_ROWS,
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def member(world: Any, anvil: Anvil, module_chain: None, gateway: str) -> dict[str, str]:
    user = world.new_user(
        funder_key=anvil.accounts[4].private_key, credit_wei=10**17, cap_wei=10**17
    )
    return session_for(gateway, "0x" + user.key.hex().removeprefix("0x"))


def _ready(client: httpx.Client, subnet_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/v1/subnets/{subnet_id}").json()
        if body["model_status"] != "loading" or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _prove(
    client: httpx.Client,
    subnet_id: int,
    row: dict[str, float] | list[dict[str, float]],
    headers: dict[str, str],
) -> httpx.Response:
    deadline = time.monotonic() + 900  # keys are made at start-up when the cache is cold
    rows = row if isinstance(row, list) else [row]
    while True:
        r = client.post(
            f"/v1/subnets/{subnet_id}/predict?proof=true", json={"rows": rows}, headers=headers
        )
        if (
            r.status_code != 503
            or "still being prepared" not in r.text
            or time.monotonic() > deadline
        ):
            return r
        time.sleep(1)


@pytest.mark.parametrize("name", ["spector", "breast_cancer"])
def test_a_proven_prediction_verifies_on_chain_through_the_advertised_verifier(
    client: httpx.Client, published: Published, member: dict[str, str], anvil: Anvil, name: str
) -> None:
    subnet_id, _bundle, ds = published[name]
    subnet = _ready(client, subnet_id)
    assert subnet["verifier"] and subnet["model_commitment"].startswith("0x")
    r = _prove(client, subnet_id, ds.rows(3, 4)[0], member)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verifier"] == subnet["verifier"]
    assert body["model_commitment"] == subnet["model_commitment"]
    instances = [int(v, 16) for v in body["instances"]]
    assert len(instances) == 3  # logit, model commitment, Poseidon hash of the features
    assert instances[1] == int(subnet["model_commitment"], 16)
    row = ds.rows(3, 4)[0]
    assert instances[2] == inputs_hash([float(row[n]) for n in ds.feature_names])
    assert abs(body["proven_logit"] - body["logits"][0]) < 1e-4
    proof = bytes.fromhex(body["proof"][2:])
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    check = check_on_chain(anvil.w3, body["verifier"], proof, instances, sender=sender)
    assert check.verified and check.gas is not None and check.gas <= 250_000
    tampered = [*instances]
    tampered[2] += 1
    assert not check_on_chain(anvil.w3, body["verifier"], proof, tampered).verified
    receipt = client.get(f"/v1/receipts/{r.headers['x-receipt-id']}", headers=member).json()
    assert receipt["receipt"]["price_wei"] == str(PROOF_PRICE_ROWS * PRICE_WEI)


def test_the_subnet_list_names_verifiers_and_null_where_none_is_recorded(
    client: httpx.Client, published: Published
) -> None:
    for subnet_id, _, _ in published.values():
        _ready(client, subnet_id)
    listed = {s["id"]: s for s in client.get("/v1/subnets").json()["subnets"]}
    assert listed[published["spector"][0]]["verifier"]
    unproven = listed[published["unproven"][0]]
    assert unproven["verifier"] is None and unproven["model_commitment"] is None


def test_proof_for_a_version_without_a_verifier_is_a_422_problem(
    client: httpx.Client, published: Published, member: dict[str, str]
) -> None:
    subnet_id, _, ds = published["unproven"]
    _ready(client, subnet_id)
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict?proof=true", json={"rows": ds.rows(0, 1)}, headers=member
    )
    assert "no proof verifier" in problem(r, 422, "proof-unsupported")["detail"]


def test_proof_of_more_than_one_row_or_of_an_out_of_range_feature_is_a_422_problem(
    client: httpx.Client, published: Published, member: dict[str, str]
) -> None:
    subnet_id, _, ds = published["spector"]
    _ready(client, subnet_id)
    rows = (ds.rows() * 2)[: BATCH_ROWS + 1]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict?proof=true", json={"rows": rows}, headers=member
    )
    assert f"at most {BATCH_ROWS} rows" in problem(r, 422, "proof-unsupported")["detail"]
    wide_id, _, wide = published["breast_cancer"]
    _ready(client, wide_id)
    r = client.post(
        f"/v1/subnets/{wide_id}/predict?proof=true", json={"rows": wide.rows(0, 2)}, headers=member
    )
    assert "prove one row per request" in problem(r, 422, "proof-unsupported")["detail"]
    row = {**ds.rows(0, 1)[0], "TUCE": 1e9}
    r = _prove(client, subnet_id, row, member)
    assert "fixed-point range" in problem(r, 422, "proof-unsupported")["detail"]


def test_a_proof_flag_that_is_not_a_boolean_is_a_400_problem(
    client: httpx.Client, published: Published, member: dict[str, str]
) -> None:
    subnet_id, _, ds = published["spector"]
    r = client.post(
        f"/v1/subnets/{subnet_id}/predict?proof=maybe", json={"rows": ds.rows(0, 1)}, headers=member
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


def test_a_full_prover_queue_answers_503_with_retry_after(
    gateway: str, published: Published, member: dict[str, str], client: httpx.Client
) -> None:
    subnet_id, _, ds = published["breast_cancer"]
    _ready(client, subnet_id)
    assert _prove(client, subnet_id, ds.rows(0, 1)[0], member).status_code == 200  # keys ready

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway, timeout=120) as c:
            return await asyncio.gather(
                *(
                    c.post(
                        f"/v1/subnets/{subnet_id}/predict?proof=true",
                        json={"rows": ds.rows(i, i + 1)},
                        headers=member,
                    )
                    for i in range(4)
                )
            )

    answers = asyncio.run(burst())
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and 503 in codes, codes
    busy = next(r for r in answers if r.status_code == 503)
    body = problem(busy, 503, "prover-busy")
    assert busy.headers["retry-after"] == str(body["retry_after_s"])


def test_the_sdk_returns_a_proven_prediction_and_checks_it_against_the_chain(
    gateway: str,
    client: httpx.Client,
    published: Published,
    member: dict[str, str],
    anvil: Anvil,
    deployment: Deployment,
) -> None:
    import dataclasses

    from clients.sdk import ChainClient, GatewayClient

    subnet_id, _, ds = published["spector"]
    _ready(client, subnet_id)
    assert _prove(client, subnet_id, ds.rows(0, 1)[0], member).status_code == 200  # keys ready
    row = ds.rows(5, 6)[0]
    with GatewayClient(gateway, session_token=member["Cookie"].split("=", 1)[1]) as sdk:
        proven = sdk.predict_proven(subnet_id, row)
    assert abs(proven.proven_logit - proven.logit) < 1e-4 and len(proven.proof) == 256
    chain = ChainClient(anvil.w3, deployment.addresses)
    features = [row[n] for n in ds.feature_names]
    assert chain.verify_prediction_proof(subnet_id, proven, features)
    assert not chain.verify_prediction_proof(subnet_id, proven, [features[0] + 0.01, *features[1:]])
    flipped = bytearray(proven.proof)
    flipped[40] ^= 0x04
    assert not chain.verify_prediction_proof(
        subnet_id, dataclasses.replace(proven, proof=bytes(flipped)), features
    )
    other_version = dataclasses.replace(proven, model_version=proven.model_version + 1)
    assert not chain.verify_prediction_proof(subnet_id, other_version, features)


def test_a_gateway_that_cannot_make_its_keys_answers_503_not_a_wait_forever(
    tmp_path: Path,
    anvil: Anvil,
    deployment: Deployment,
    published: Published,
    store: Path,
    world: Any,
) -> None:
    not_a_dir = tmp_path / "keys"
    not_a_dir.write_text("a file where the key cache should be")
    settings = GatewaySettings(
        public_url=PUBLIC_URL,
        rpc_url=anvil.rpc_url,
        contracts=dict(deployment.addresses),
        queue_path=tmp_path / "receipts.sqlite3",
        recorder_enabled=False,
        event_poll_interval_s=0.2,
        settle_interval_s=0,
        model_store=store,
        proof_keys_dir=not_a_dir,
    )
    subnet_id, _, ds = published["spector"]
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        user = world.new_user(
            funder_key=anvil.accounts[4].private_key, credit_wei=10**16, cap_wei=10**16
        )
        headers = session_for(url, "0x" + user.key.hex().removeprefix("0x"))
        _ready(c, subnet_id)
        deadline = time.monotonic() + 60
        while True:
            r = c.post(
                f"/v1/subnets/{subnet_id}/predict?proof=true",
                json={"rows": ds.rows(0, 1)},
                headers=headers,
            )
            if "still being prepared" not in r.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "could not make its proving keys" in problem(r, 503, "unavailable")["detail"]


def test_several_rows_get_one_batch_proof_the_sdk_checks_locally_and_on_chain(
    gateway: str,
    client: httpx.Client,
    published: Published,
    member: dict[str, str],
    anvil: Anvil,
    deployment: Deployment,
) -> None:
    import dataclasses

    from clients.sdk import ChainClient, GatewayClient

    subnet_id, _, ds = published["spector"]
    _ready(client, subnet_id)
    rows = ds.rows(0, 5)
    r = _prove(client, subnet_id, rows, member)  # waits for the batch keys
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["instances"]) == 3 and len(body["logit_words"]) == 5
    assert body["verifier"] == _ready(client, subnet_id)["verifier"]
    receipt = client.get(f"/v1/receipts/{r.headers['x-receipt-id']}", headers=member).json()
    assert receipt["receipt"]["price_wei"] == str(5 * PROOF_PRICE_ROWS * PRICE_WEI)
    # The version's one recorded verifier routes the batch proof (commitment at instances[2]).
    sender = Transactor(anvil.w3, anvil.accounts[6].private_key)
    instances = [int(v, 16) for v in body["instances"]]
    proof = bytes.fromhex(body["proof"][2:])
    check = check_on_chain(anvil.w3, body["verifier"], proof, instances, sender=sender)
    assert check.verified and check.gas is not None and check.gas < 300_000

    with GatewayClient(gateway, session_token=member["Cookie"].split("=", 1)[1]) as sdk:
        proven = sdk.predict_proven_batch(subnet_id, ds.rows(3, 7))
    for proven_logit, logit in zip(proven.proven_logits, proven.logits, strict=True):
        assert abs(proven_logit - logit) < 1e-4
    chain = ChainClient(anvil.w3, deployment.addresses)
    features = [[r[n] for n in ds.feature_names] for r in ds.rows(3, 7)]
    assert chain.verify_batch_proof(subnet_id, proven, features)
    other_rows = [[features[0][0] + 0.01, *features[0][1:]], *features[1:]]
    assert not chain.verify_batch_proof(subnet_id, proven, other_rows)
    words = list(proven.logit_words)
    words[1] += 1
    assert not chain.verify_batch_proof(
        subnet_id, dataclasses.replace(proven, logit_words=tuple(words)), features
    )
    flipped = bytearray(proven.proof)
    flipped[40] ^= 0x04
    assert not chain.verify_batch_proof(
        subnet_id, dataclasses.replace(proven, proof=bytes(flipped)), features
    )
    other_version = dataclasses.replace(proven, model_version=proven.model_version + 1)
    assert not chain.verify_batch_proof(subnet_id, other_version, features)
    # Another version's verifier (the breast-cancer one, no batch route) refuses it on chain.
    other = _ready(client, published["breast_cancer"][0])["verifier"]
    assert not check_on_chain(anvil.w3, other, proven.proof, list(proven.instances)).verified
