from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from gateway_chain import World
from gateway_support import serve, session_headers, sign, sign_in, siwe_message
from litestar import Request, post

from contracts.tx import Transactor as DevTransactor
from gateway import GatewaySettings, create_app
from gateway._services import Services


@post("/test/explode", status_code=200)
async def explode() -> None:
    raise RuntimeError("secret internals /etc/passwd")


@post("/test/billed-then-fail/{subnet_id:int}", status_code=200)
async def billed_then_fail(request: Request[Any, Any, Any], subnet_id: int) -> None:
    services: Services = request.app.state.services
    from gateway._auth import SESSION_COOKIE, Caller

    address = await services.auth.session_address(request.cookies[SESSION_COOKIE])
    assert address is not None
    async with services.need_billing().billed(Caller(address, "session"), subnet_id, rows=1):
        raise RuntimeError("the model crashed")


@pytest.fixture
def gw(chain_settings: GatewaySettings) -> Iterator[httpx.Client]:
    app = create_app(chain_settings, extra_route_handlers=[explode, billed_then_fail])
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_a_500_hides_its_detail(gw: httpx.Client) -> None:
    body = _problem(gw.post("/test/explode"), 500)
    assert "detail" not in body and "passwd" not in str(body)


def test_a_failing_handler_releases_the_reservation(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    token = sign_in(gw, new_user().key.hex())
    _problem(
        gw.post(f"/test/billed-then-fail/{world.subnet_id}", headers=session_headers(token)), 500
    )
    assert gw.get("/v1/me", headers=session_headers(token)).json()["outstanding_wei"] == "0"


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_health_metrics_and_openapi_are_served(gw: httpx.Client) -> None:
    assert gw.get("/healthz").json() == {"status": "ok"}
    gw.get("/v1/keys/abc123")  # unauthenticated: 401, counted under its template
    metrics = gw.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'gateway_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert "gateway_receipt_queue_depth 0.0" in text
    assert "abc123" not in text  # raw paths never become labels
    paths = gw.get("/schema/openapi.json").json()["paths"]
    assert "/v1/auth/verify" in paths and "/v1/receipts/{receipt_id}" in paths
    for paid in ("predict", "infer"):  # their refusals are documented as RFC 9457 problems
        responses = paths[f"/v1/subnets/{{subnet_id}}/{paid}"]["post"]["responses"]
        assert {"401", "402", "403", "429"} <= set(responses)
        assert "application/problem+json" in responses["402"]["content"]


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_unknown_routes_and_methods_are_problems(gw: httpx.Client) -> None:
    _problem(gw.get("/v1/nothing"), 404)
    _problem(gw.put("/v1/auth/nonce"), 405)


def test_a_full_receipt_queue_is_503_and_releases_the_reservation(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    with (
        serve(create_app(chain_settings.with_(queue_max_pending=1))) as url,
        httpx.Client(base_url=url) as gw,
    ):
        token = sign_in(gw, new_user().key.hex())
        call = f"/v1/subnets/{world.subnet_id}/noop"
        assert gw.post(call, json={"rows": 1}, headers=session_headers(token)).status_code == 200
        _problem(gw.post(call, json={"rows": 1}, headers=session_headers(token)), 503)
        me = gw.get("/v1/me", headers=session_headers(token)).json()
        assert me["outstanding_wei"] == str(
            world.registry.functions.subnetOf(world.subnet_id).call()[4]
        )


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_an_unreachable_chain_is_503(base_settings: GatewaySettings, deployment: Any) -> None:
    settings = base_settings.with_(
        rpc_url="http://127.0.0.1:9", contracts=dict(deployment.addresses)
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as gw:
        _problem(gw.get("/v1/subnets/1"), 503)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_the_noop_route_is_absent_unless_enabled(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    with (
        serve(create_app(chain_settings.with_(enable_noop_route=False))) as url,
        httpx.Client(base_url=url) as gw,
    ):
        token = sign_in(gw, new_user().key.hex())
        r = gw.post(f"/v1/subnets/{world.subnet_id}/noop", json={}, headers=session_headers(token))
        _problem(r, 404)
        _problem(gw.post(f"/v1/subnets/{world.subnet_id}/noop", json={}), 404)  # signed in or not


def test_receipts_are_private_and_ids_are_checked(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    mine, theirs = sign_in(gw, new_user().key.hex()), sign_in(gw, new_user().key.hex())
    r = gw.post(f"/v1/subnets/{world.subnet_id}/noop", json={}, headers=session_headers(mine))
    receipt_id = r.headers["x-receipt-id"]
    assert gw.get(f"/v1/receipts/{receipt_id}", headers=session_headers(mine)).status_code == 200
    _problem(gw.get(f"/v1/receipts/{receipt_id}", headers=session_headers(theirs)), 404)
    _problem(gw.get("/v1/receipts/0x1234", headers=session_headers(mine)), 400)
    _problem(gw.get(f"/v1/receipts/{receipt_id}"), 401)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_malformed_spending_authorisations_are_400(gw: httpx.Client, new_user: Any) -> None:
    user = new_user(cap_wei=None)
    token = sign_in(gw, user.key.hex())
    good = {
        "user": user.address,
        "max_total_spend_wei": "1000",
        "expiry": int(time.time()) + 600,
        "nonce": 1,
        "signature": "0x" + "00" * 65,
    }
    for change in (
        {"signature": "0xzz"},
        {"max_total_spend_wei": "lots"},
        {"expiry": int(time.time()) - 1},
        {"nonce": 0},
    ):
        r = gw.post(
            "/v1/spending-authorizations", json=good | change, headers=session_headers(token)
        )
        _problem(r, 400)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_a_contract_wallet_signs_in_through_eip_1271(
    gw: httpx.Client, world: World, anvil: Any
) -> None:
    owner = Account.create()
    deployer = DevTransactor(world.w3, anvil.accounts[5].private_key)
    wallet = deployer.deploy("TestERC1271Wallet", owner.address)
    nonce = gw.get("/v1/auth/nonce").json()["nonce"]
    message = siwe_message(wallet.address, nonce)
    r = gw.post(
        "/v1/auth/verify", json={"message": message, "signature": sign(message, owner.key.hex())}
    )
    assert r.status_code == 200, r.text
    assert r.json()["address"] == wallet.address
    # Someone else's signature does not satisfy the wallet.
    nonce = gw.get("/v1/auth/nonce").json()["nonce"]
    message = siwe_message(wallet.address, nonce)
    forged = sign(message, Account.create().key.hex())
    _problem(gw.post("/v1/auth/verify", json={"message": message, "signature": forged}), 401)
