from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway_chain import MIN_STAKE_WEI, PRICE_WEI, World
from gateway_support import future, serve, session_headers, sign_in

from contracts.tx import Transactor as DevTransactor
from gateway import GatewaySettings, RateTier, create_app


@pytest.fixture
def gw(chain_settings: GatewaySettings) -> Iterator[httpx.Client]:
    with serve(create_app(chain_settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _call(client: httpx.Client, token: str, subnet_id: int, rows: int = 1) -> httpx.Response:
    return client.post(
        f"/v1/subnets/{subnet_id}/noop", json={"rows": rows}, headers=session_headers(token)
    )


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


def test_a_billed_call_reserves_the_price_per_row_and_queues_a_receipt(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user()
    token = sign_in(gw, user.key.hex())
    r = _call(gw, token, world.subnet_id, rows=3)
    assert r.status_code == 200, r.text
    assert r.json()["price_wei"] == str(3 * PRICE_WEI)
    receipt_id = r.headers["x-receipt-id"]
    me = gw.get("/v1/me", headers=session_headers(token)).json()
    assert me["outstanding_wei"] == str(3 * PRICE_WEI)
    staked = world.vault.functions.stakedValueOf(user.address).call()
    assert me["tier"] == "silver" and me["stake_wei"] == str(staked)
    got = gw.get(f"/v1/receipts/{receipt_id}", headers=session_headers(token)).json()
    assert got["status"] == "queued" and got["receipt"]["price_wei"] == str(3 * PRICE_WEI)


def test_stake_below_the_minimum_is_403_with_required_and_actual_stake(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user(stake_wei=MIN_STAKE_WEI // 2)
    token = sign_in(gw, user.key.hex())
    body = _problem(_call(gw, token, world.subnet_id), 403)
    staked = world.vault.functions.stakedValueOf(user.address).call()
    assert 0 < staked < MIN_STAKE_WEI
    assert body["required_stake_wei"] == str(MIN_STAKE_WEI)
    assert body["actual_stake_wei"] == str(staked)


def test_a_withdrawal_request_closes_access_within_seconds(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user()
    token = sign_in(gw, user.key.hex())
    assert _call(gw, token, world.subnet_id).status_code == 200
    shares = world.vault.functions.stakeOf(user.address, world.reth.address).call()[0]
    DevTransactor(world.w3, user.key.hex()).transact(
        world.vault.functions.requestWithdrawal(world.reth.address, shares)
    )
    start = time.monotonic()
    while time.monotonic() - start < 5:
        r = _call(gw, token, world.subnet_id)
        if r.status_code == 403:
            break
        time.sleep(0.1)
    _problem(r, 403)
    assert time.monotonic() - start < 3  # event poll every 0.2 s; cache TTL alone would be 5 s


def test_over_the_rate_is_429_with_retry_after(
    chain_settings: GatewaySettings, world: World, new_user: Any
) -> None:
    tiers = (RateTier("basic", 0, 0.5, 1), RateTier("silver", 10**18, 0.5, 2))
    with (
        serve(create_app(chain_settings.with_(tiers=tiers))) as url,
        httpx.Client(base_url=url) as gw,
    ):
        token = sign_in(gw, new_user().key.hex())
        assert _call(gw, token, world.subnet_id).status_code == 200
        assert _call(gw, token, world.subnet_id).status_code == 200
        r = _call(gw, token, world.subnet_id)
        body = _problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1 and "silver" in body["detail"]


def test_no_credit_is_402_with_what_is_missing(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user(credit_wei=0)
    token = sign_in(gw, user.key.hex())
    body = _problem(_call(gw, token, world.subnet_id, rows=2), 402)
    assert body["missing_wei"] == str(2 * PRICE_WEI) and body["credit_wei"] == "0"
    assert "credit" in body["detail"]


def test_no_spending_authorisation_is_402_naming_the_route(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user(cap_wei=None)
    token = sign_in(gw, user.key.hex())
    body = _problem(_call(gw, token, world.subnet_id), 402)
    assert "/v1/spending-authorizations" in body["detail"]


def test_concurrent_calls_never_reserve_beyond_the_signed_cap(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user(credit_wei=10**16, cap_wei=3 * PRICE_WEI)
    token = sign_in(gw, user.key.hex())
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _call(gw, token, world.subnet_id).status_code, range(8)))
    assert sorted(statuses) == [200] * 3 + [402] * 5


def test_a_signed_cap_posted_to_the_gateway_opens_credit(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user(cap_wei=None)
    token = sign_in(gw, user.key.hex())
    _problem(_call(gw, token, world.subnet_id), 402)
    expiry = int(time.time()) + 3600
    signature = world.sign_cap(user.key.hex(), 10**15, expiry, 1)
    body = {
        "user": user.address,
        "max_total_spend_wei": str(10**15),
        "expiry": expiry,
        "nonce": 1,
        "signature": "0x" + signature.hex(),
    }
    r = gw.post("/v1/spending-authorizations", json=body, headers=session_headers(token))
    assert r.status_code == 201, r.text
    assert _call(gw, token, world.subnet_id).status_code == 200
    replay = gw.post("/v1/spending-authorizations", json=body, headers=session_headers(token))
    assert replay.status_code == 201 and replay.json()["tx_hash"] == r.json()["tx_hash"]
    stale = world.sign_cap(user.key.hex(), 10**16, expiry, 1)
    body.update(max_total_spend_wei=str(10**16), signature="0x" + stale.hex())
    r = gw.post("/v1/spending-authorizations", json=body, headers=session_headers(token))
    assert "nonce" in _problem(r, 400)["detail"].lower() or "Stale" in r.text


def test_a_cap_signed_by_someone_else_is_refused(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user, other = new_user(cap_wei=None), new_user(cap_wei=None)
    token = sign_in(gw, user.key.hex())
    expiry = int(time.time()) + 3600
    signature = world.sign_cap(other.key.hex(), 10**15, expiry, 1)
    body = {
        "user": user.address,
        "max_total_spend_wei": str(10**15),
        "expiry": expiry,
        "nonce": 1,
        "signature": "0x" + signature.hex(),
    }
    refused = _problem(
        gw.post("/v1/spending-authorizations", json=body, headers=session_headers(token)), 400
    )
    # the transactor's WouldRevert carries the revert data; the detail names the decoded error
    assert "InferenceLedgerInvalidSignature" in refused["detail"], refused
    body["user"] = other.address
    _problem(gw.post("/v1/spending-authorizations", json=body, headers=session_headers(token)), 403)


def test_a_key_scoped_to_another_subnet_is_403(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    token = sign_in(gw, new_user().key.hex())
    created = gw.post(
        "/v1/keys", json={"subnets": [world.subnet_id + 1000]}, headers=session_headers(token)
    ).json()
    r = gw.post(
        f"/v1/subnets/{world.subnet_id}/noop",
        json={"rows": 1},
        headers={"Authorization": f"Bearer {created['key']}"},
    )
    _problem(r, 403)


def test_an_unknown_subnet_is_404_and_one_without_a_model_is_409(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    token = sign_in(gw, new_user().key.hex())
    _problem(_call(gw, token, 999_999), 404)
    empty = world.create_subnet(PRICE_WEI, 0, publish=False)
    _problem(_call(gw, token, empty), 409)


def test_a_row_count_out_of_range_is_400(gw: httpx.Client, world: World, new_user: Any) -> None:
    token = sign_in(gw, new_user().key.hex())
    _problem(_call(gw, token, world.subnet_id, rows=0), 400)


def test_subnets_are_listed_with_price_and_minimum_stake(gw: httpx.Client, world: World) -> None:
    one = gw.get(f"/v1/subnets/{world.subnet_id}").json()
    assert one["price_per_row_wei"] == str(PRICE_WEI)
    assert one["min_stake_wei"] == str(MIN_STAKE_WEI)
    assert world.subnet_id in [s["id"] for s in gw.get("/v1/subnets").json()["subnets"]]


# ------------------------------------------------- paid callers are cached, never trusted stale


@pytest.fixture
def two_gateways(chain_settings: GatewaySettings) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two gateway processes' worth of app sharing one Redis (memory: one app, twice)."""
    with serve(create_app(chain_settings)) as url_a, httpx.Client(base_url=url_a) as a:
        if chain_settings.redis_url is None:
            yield a, a
            return
        with serve(create_app(chain_settings)) as url_b, httpx.Client(base_url=url_b) as b:
            yield a, b


def _outstanding(client: httpx.Client, private_key: str) -> int:
    token = sign_in(client, private_key)
    return int(client.get("/v1/me", headers=session_headers(token)).json()["outstanding_wei"])


def test_a_logout_anywhere_stops_the_next_paid_call_of_a_cached_caller(
    two_gateways: tuple[httpx.Client, httpx.Client], world: World, new_user: Any
) -> None:
    a, b = two_gateways
    user = new_user()
    token = sign_in(a, user.key.hex())
    assert _call(b, token, world.subnet_id).status_code == 200  # b caches the caller
    assert a.post("/v1/auth/logout", headers=session_headers(token)).status_code in (200, 204)
    body = _problem(_call(b, token, world.subnet_id), 401)
    assert "session has ended" in body["detail"]
    _problem(_call(b, token, world.subnet_id), 401)  # and again, now from the store
    assert _outstanding(a, user.key.hex()) == PRICE_WEI  # nothing reserved after logout


def test_a_revoked_key_stops_the_next_paid_call_of_a_cached_caller(
    two_gateways: tuple[httpx.Client, httpx.Client], world: World, new_user: Any
) -> None:
    a, b = two_gateways
    user = new_user()
    token = sign_in(a, user.key.hex())
    created = a.post("/v1/keys", json={}, headers=session_headers(token)).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}
    noop = f"/v1/subnets/{world.subnet_id}/noop"
    assert b.post(noop, json={"rows": 1}, headers=bearer).status_code == 200
    forged = {"Authorization": f"Bearer {created['key'][:-4]}AAAA"}  # right id, wrong secret
    _problem(b.post(noop, json={"rows": 1}, headers=forged), 401)
    assert a.delete(f"/v1/keys/{created['id']}", headers=session_headers(token)).status_code == 204
    body = _problem(b.post(noop, json={"rows": 1}, headers=bearer), 401)
    assert "revoked" in body["detail"]
    assert _outstanding(a, user.key.hex()) == PRICE_WEI


def test_a_cached_session_ends_at_its_siwe_expiration_time(
    gw: httpx.Client, world: World, new_user: Any
) -> None:
    user = new_user()
    token = sign_in(gw, user.key.hex(), expiration=future(2))
    assert _call(gw, token, world.subnet_id).status_code == 200
    time.sleep(2.5)
    _problem(_call(gw, token, world.subnet_id), 401)


def test_paid_routes_refuse_missing_and_malformed_credentials(
    gw: httpx.Client, world: World
) -> None:
    noop = f"/v1/subnets/{world.subnet_id}/noop"
    _problem(gw.post(noop, json={"rows": 1}), 401)
    _problem(gw.post(noop, json={"rows": 1}, headers={"Authorization": "Basic abc"}), 401)
    _problem(gw.post(noop, json={"rows": 1}, headers={"Authorization": "Bearer nope"}), 401)
    _problem(gw.post(noop, json={"rows": 1}, headers=session_headers("not-a-session")), 401)


@pytest.mark.parametrize("body", [b"not json", b'{"rows": "three"}', b"[1, 2]"])
def test_a_malformed_noop_body_is_400_and_reserves_nothing(
    gw: httpx.Client, world: World, new_user: Any, body: bytes
) -> None:
    user = new_user()
    token = sign_in(gw, user.key.hex())
    r = gw.post(
        f"/v1/subnets/{world.subnet_id}/noop",
        content=body,
        headers={**session_headers(token), "Content-Type": "application/json"},
    )
    assert "rows" in _problem(r, 400)["detail"]
    me = gw.get("/v1/me", headers=session_headers(token)).json()
    assert me["outstanding_wei"] == "0"
