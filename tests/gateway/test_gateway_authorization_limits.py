"""``POST /v1/spending-authorizations`` is rate-limited so a flood cannot starve ``recordBatch``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway_chain import PRICE_WEI, World
from gateway_support import serve, session_headers, sign_in

from gateway import GatewaySettings, create_app
from gateway._recorder import Recorder
from gateway._services import build_services


@pytest.fixture
def limited(chain_settings: GatewaySettings) -> Iterator[httpx.Client]:
    settings = chain_settings.with_(
        recorder_enabled=True,
        authorization_per_address_per_hour=3,  # burst 3
        authorization_global_per_hour=48,  # burst 4
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _authorize(client: httpx.Client, world: World, user: Any, token: str, nonce: int) -> Any:
    expiry = int(time.time()) + 3600
    signature = world.sign_cap(user.key.hex(), 10**16 + nonce, expiry, nonce)
    body = {
        "user": user.address,
        "max_total_spend_wei": str(10**16 + nonce),
        "expiry": expiry,
        "nonce": nonce,
        "signature": "0x" + signature.hex(),
    }
    return client.post("/v1/spending-authorizations", json=body, headers=session_headers(token))


def test_a_flood_of_authorisations_is_429_per_address_and_globally_and_batches_still_record(
    limited: httpx.Client, world: World, new_user: Any
) -> None:
    flooder, second, third = new_user(), new_user(), new_user()
    tokens = {u.address: sign_in(limited, u.key.hex()) for u in (flooder, second, third)}
    # One address: three (its burst) go through, then 429 with Retry-After.
    statuses = [
        _authorize(limited, world, flooder, tokens[flooder.address], n).status_code
        for n in range(2, 8)
    ]
    assert statuses == [201, 201, 201, 429, 429, 429]
    r = _authorize(limited, world, flooder, tokens[flooder.address], 9)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "per address" in r.json()["detail"]
    # The gateway-wide budget (burst 4) is spent after one more, whoever asks.
    assert _authorize(limited, world, second, tokens[second.address], 2).status_code == 201
    r = _authorize(limited, world, third, tokens[third.address], 2)
    assert r.status_code == 429 and "budget" in r.json()["detail"]
    # recordBatch still goes through: the flooder's billed call is recorded on chain.
    spent_before = int(world.ledger.functions.spentOf(flooder.address).call())
    paid = limited.post(
        f"/v1/subnets/{world.subnet_id}/noop",
        json={"rows": 1},
        headers=session_headers(tokens[flooder.address]),
    )
    assert paid.status_code == 200, paid.text
    receipt_id = paid.headers["x-receipt-id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = limited.get(
            f"/v1/receipts/{receipt_id}", headers=session_headers(tokens[flooder.address])
        ).json()
        if body["status"] == "recorded":
            break
        time.sleep(0.1)
    assert body["status"] == "recorded"
    assert int(world.ledger.functions.spentOf(flooder.address).call()) == spent_before + PRICE_WEI


def test_the_global_budget_is_at_most_half_the_signer_s_hourly_window(
    chain_settings: GatewaySettings,
) -> None:
    async def budget(settings: GatewaySettings) -> tuple[int, int]:
        services = build_services(settings)
        try:
            recorder = Recorder.from_services(services)
            policy = await asyncio.to_thread(recorder._tx.signer.client.policy)
            cap = int(policy["policy"]["limits"]["max_tx_per_hour"])
            return cap, await recorder.authorization_budget_per_hour()
        finally:
            await services.queue.close()
            await services.state.close()
            assert services.chain is not None
            await services.chain.close()

    cap, clamped = asyncio.run(budget(chain_settings.with_(authorization_global_per_hour=10**9)))
    assert clamped == cap // 2
    assert asyncio.run(budget(chain_settings.with_(authorization_global_per_hour=7)))[1] == 7
